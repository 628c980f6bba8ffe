// Declarations-only transcription of <poplar/Engine.hpp>; see poplar/Core.hpp.
#pragma once
#include "Graph.hpp"

namespace poplar {

class Engine {
public:
  Engine(const Graph &graph, ArrayRef<program::Program> progs, const OptionFlags &opt = {});
  Engine(const Graph &graph, const program::Program &prog, const OptionFlags &opt = {});
  void load(const Device &device);
  void run(unsigned prog = 0, const std::string &debugName = "");
  void connectStream(StringRef handle, void *begin, void *end);
  void connectStream(StringRef handle, void *p);
  void readTensor(StringRef handle, void *buf, void *bufEnd);
  void writeTensor(StringRef handle, const void *buf, const void *bufEnd);
};

} // namespace poplar
