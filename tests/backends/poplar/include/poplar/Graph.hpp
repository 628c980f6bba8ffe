// Declarations-only transcription of <poplar/Graph.hpp>; see poplar/Core.hpp.
#pragma once
#include "Core.hpp"
#include "Program.hpp"

namespace poplar {

enum class TensorCloneMethod { PRESERVE_ORDER_AND_ALIASES, CREATE_NEW_ORDER, PRESERVE_ORDER_UNLESS_ALIASES };

class Graph {
public:
  Graph(const Target &target);
  Tensor addVariable(const Type &type, ArrayRef<std::size_t> shape, const DebugContext &debugContext = {});
  template <typename T>
  Tensor addConstant(const Type &type, ArrayRef<std::size_t> shape, ArrayRef<T> values,
                     const DebugContext &debugContext = {});
  void setTileMapping(const Tensor &t, unsigned tileNum);
  template <typename T> void setInitialValue(const Tensor &t, ArrayRef<T> values);
  template <typename T>
  void setInitialValue(const Tensor &t, T value,
                       typename std::enable_if<std::is_arithmetic<T>::value>::type * = nullptr);
  void setInitialValueHalf(const Tensor &t, ArrayRef<std::uint16_t> values);
  Tensor clone(const Tensor &t, const DebugContext &debugContext = {},
               TensorCloneMethod method = TensorCloneMethod::PRESERVE_ORDER_UNLESS_ALIASES);
  DataStream addHostToDeviceFIFO(StringRef handle, const Type &elementType, std::size_t numElements,
                                 ReplicatedStreamMode replicatedMode = ReplicatedStreamMode::REPLICATE,
                                 const OptionFlags &options = {});
  DataStream addDeviceToHostFIFO(StringRef handle, const Type &elementType, std::size_t numElements,
                                 const OptionFlags &options = {});
  void createHostWrite(StringRef handle, const Tensor &t, bool rearrangeOnHost = false);
  void createHostRead(StringRef handle, const Tensor &t, bool rearrangeOnHost = false);
  Function addFunction(const program::Program &program);
  const Target &getTarget() const;
};

} // namespace poplar
