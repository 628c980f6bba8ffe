// Declarations-only transcription of <popops/Operation.hpp> (graphcore/poplibs); see poplar/Core.hpp.
#pragma once

namespace popops {
enum class Operation { ADD, MUL, MIN, MAX, LOGICAL_AND, LOGICAL_OR, SQUARE_ADD, LOG_ADD };
} // namespace popops
