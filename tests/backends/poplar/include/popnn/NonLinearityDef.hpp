// Declarations-only transcription of <popnn/NonLinearityDef.hpp> (graphcore/poplibs); see poplar/Core.hpp.
#pragma once

namespace popnn {
enum class NonLinearityType { SIGMOID, HARD_SIGMOID, RELU, TANH, GELU, SWISH, SOFTMAX, SOFTMAX_STABLE, SOFTMAX_SCALED };
} // namespace popnn
