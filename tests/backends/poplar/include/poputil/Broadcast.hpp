// Declarations-only transcription of <poputil/Broadcast.hpp> (graphcore/poplibs); see poplar/Core.hpp.
#pragma once
#include <poplar/Core.hpp>

namespace poputil {
void expandToMatchRanks(poplar::Tensor &a, poplar::Tensor &b);
void broadcastToMatch(poplar::Tensor &a, const std::vector<std::size_t> &shape);
void broadcastToMatch(poplar::Tensor &a, poplar::Tensor &b);
void broadcastToMatch(poplar::Tensor &a, poplar::Tensor &b, poplar::Tensor &c);
} // namespace poputil
