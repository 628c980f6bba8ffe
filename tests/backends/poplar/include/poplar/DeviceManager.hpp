// Declarations-only transcription of <poplar/DeviceManager.hpp>; see poplar/Core.hpp.
#pragma once
#include "Core.hpp"

namespace poplar {

class DeviceManager {
public:
  static DeviceManager createDeviceManager();
  std::vector<Device> getDevices(TargetType type, unsigned requiredNumIPUs, const OptionFlags &opts = {}) const;
};

} // namespace poplar
