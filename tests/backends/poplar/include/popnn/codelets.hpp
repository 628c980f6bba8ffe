// Declarations-only transcription of <popnn/codelets.hpp> (graphcore/poplibs); see poplar/Core.hpp.
#pragma once
#include <poplar/Graph.hpp>

namespace popnn {
void addCodelets(poplar::Graph &graph);
} // namespace popnn
