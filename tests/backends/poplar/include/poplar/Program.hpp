// Declarations-only transcription of <poplar/Program.hpp> (program::Program, Sequence, Copy, Call,
// Repeat); see poplar/Core.hpp.
#pragma once
#include "Core.hpp"

namespace poplar {
namespace program {

class Program {
public:
  Program();
};

class Sequence : public Program {
public:
  Sequence(const DebugContext &debugContext = {});
  Sequence(std::initializer_list<Program> programs, const DebugContext &debugContext = {});
  void add(const Program &p);
};

class Copy : public Program {
public:
  Copy(const Tensor &src, const Tensor &dst, bool dontOutline = false, const DebugContext &debugContext = {});
  Copy(const DataStream &stream, const Tensor &dst, bool optimiseMemory = false,
       const DebugContext &debugContext = {});
  Copy(const Tensor &src, const DataStream &stream, bool optimiseMemory = false,
       const DebugContext &debugContext = {});
};

class Call : public Program {
public:
  Call(Function f, const DebugContext &debugContext = {});
};

class Repeat : public Program {
public:
  Repeat(unsigned count, const Program &prog, const DebugContext &debugContext = {});
};

} // namespace program
} // namespace poplar
