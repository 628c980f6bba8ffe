// Declarations-only transcription of <popops/Encoding.hpp> (graphcore/poplibs); see poplar/Core.hpp.
#pragma once
#include <poplar/Graph.hpp>

namespace popops {
void encodeOneHot(poplar::Graph &graph, const poplar::Tensor &indices, const poplar::Tensor &encoded,
                  poplar::program::Sequence &prog, const poplar::DebugContext &debugContext = {});
} // namespace popops
