// Declarations-only transcription of <popops/codelets.hpp> (graphcore/poplibs); see poplar/Core.hpp.
#pragma once
#include <poplar/Graph.hpp>

namespace popops {
void addCodelets(poplar::Graph &graph);
} // namespace popops
