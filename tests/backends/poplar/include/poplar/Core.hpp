// Declarations-only transcription of the parts of the public Poplar API that emitted programs use
// (poplar/Type.hpp, ArrayRef.hpp, StringRef.hpp, DebugContext.hpp, OptionFlags.hpp, Tensor.hpp,
// Target.hpp, Device.hpp, DataStream.hpp, GraphElements.hpp). Signatures follow the Poplar SDK API
// reference; there are no definitions: this exists so `g++ -fsyntax-only` can check generated code.
// It is an API-surface check only, never a substitute for building against the real SDK.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace poplar {

class Type {
public:
  Type();
  bool operator==(const Type &other) const;
  bool operator!=(const Type &other) const;
};
extern const Type BOOL, CHAR, UNSIGNED_CHAR, SIGNED_CHAR, UNSIGNED_SHORT, SHORT, UNSIGNED_INT, INT,
    UNSIGNED_LONG, LONG, UNSIGNED_LONGLONG, LONGLONG, HALF, FLOAT;

template <class T> class ArrayRef {
public:
  ArrayRef();
  ArrayRef(const T *p, std::size_t size);
  ArrayRef(const std::vector<T> &v);
  ArrayRef(std::initializer_list<T> list);
  const T *data() const;
  std::size_t size() const;
  const T &operator[](std::size_t i) const;
};

class StringRef {
public:
  StringRef();
  StringRef(const char *s);
  StringRef(const std::string &s);
  operator std::string() const;
};

class DebugContext {
public:
  DebugContext();
  DebugContext(const char *name);
  DebugContext(std::string name);
  DebugContext(StringRef name);
};

class OptionFlags {
public:
  using initializer_list = std::initializer_list<std::pair<const std::string, std::string>>;
  OptionFlags();
  OptionFlags(initializer_list &&list);
  OptionFlags(const OptionFlags &other);
  void set(StringRef option, StringRef value);
};

class Interval;

class Tensor {
public:
  Tensor();
  Tensor(const Tensor &other);
  Tensor &operator=(const Tensor &other);
  ~Tensor();
  Tensor reshape(ArrayRef<std::size_t> shape) const;
  Tensor dimShuffle(ArrayRef<unsigned> permutation) const;
  Tensor transpose() const;
  Tensor flatten() const;
  Tensor broadcast(unsigned N, unsigned dim) const;
  Tensor slice(std::size_t begin, std::size_t end, unsigned dimension = 0) const;
  Tensor operator[](std::size_t i) const &;
  std::size_t numElements() const;
  std::size_t rank() const;
  std::size_t dim(unsigned i) const;
  std::vector<std::size_t> shape() const;
  Type elementType() const;
};

class Target {
public:
  unsigned getNumTiles() const;
  unsigned getNumIPUs() const;
};

enum class TargetType { IPU, IPU_MODEL, CPU };

class Device {
public:
  Device();
  Device(Device &&);
  Device &operator=(Device &&);
  Device(const Device &) = delete;
  ~Device();
  bool attach() const;
  void detach() const;
  unsigned getId() const;
  const Target &getTarget() const;
};

class DataStream {
public:
  DataStream(const DataStream &other);
  DataStream &operator=(const DataStream &other);
};

class Function {
public:
  Function(const Function &other);
  Function &operator=(const Function &other);
};

enum class ReplicatedStreamMode { REPLICATE, BROADCAST };

} // namespace poplar
