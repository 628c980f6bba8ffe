// Declarations-only transcription of <poplar/IPUModel.hpp>; see poplar/Core.hpp.
#pragma once
#include "Core.hpp"

namespace poplar {

struct IPUModel {
  IPUModel(const char *ipuVersion = "ipu2");
  unsigned numIPUs;
  unsigned tilesPerIPU;
  Device createDevice(OptionFlags opts = {}, bool accurateHalf = false) const;
};

} // namespace poplar
