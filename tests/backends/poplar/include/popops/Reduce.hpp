// Declarations-only transcription of <popops/Reduce.hpp> (graphcore/poplibs); see poplar/Core.hpp.
#pragma once
#include <poplar/Graph.hpp>
#include <popops/Operation.hpp>

namespace popops {
struct ReduceParams {
  ReduceParams();
  ReduceParams(popops::Operation op, bool update = false);
  ReduceParams(popops::Operation op, bool update, poplar::Tensor scale);
};
poplar::Tensor reduce(poplar::Graph &graph, const poplar::Tensor &in, const poplar::Type &outType,
                      const std::vector<std::size_t> &dims, ReduceParams params, poplar::program::Sequence &prog,
                      const poplar::DebugContext &debugContext = {}, const poplar::OptionFlags &options = {});
poplar::Tensor reduce(poplar::Graph &graph, const poplar::Tensor &in, const std::vector<std::size_t> &dims,
                      ReduceParams params, poplar::program::Sequence &prog,
                      const poplar::DebugContext &debugContext = {}, const poplar::OptionFlags &options = {});
} // namespace popops
