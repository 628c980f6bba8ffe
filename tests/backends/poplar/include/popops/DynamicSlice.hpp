// Declarations-only transcription of <popops/DynamicSlice.hpp> (graphcore/poplibs); see poplar/Core.hpp.
#pragma once
#include <poplar/Graph.hpp>

namespace popops {
class SlicePlan {
public:
  SlicePlan();
};
void multiUpdateAdd(poplar::Graph &graph, const poplar::Tensor &t, const poplar::Tensor &s,
                    const poplar::Tensor &offsets, const poplar::Tensor &scale, const std::vector<std::size_t> &dims,
                    const std::vector<std::size_t> &sizes, poplar::program::Sequence &prog, const SlicePlan &plan,
                    const poplar::OptionFlags &options, const poplar::DebugContext &debugContext = {});
} // namespace popops
