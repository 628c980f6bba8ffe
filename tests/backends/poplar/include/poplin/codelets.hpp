// Declarations-only transcription of <poplin/codelets.hpp> (graphcore/poplibs); see poplar/Core.hpp.
#pragma once
#include <poplar/Graph.hpp>

namespace poplin {
void addCodelets(poplar::Graph &graph);
} // namespace poplin
