"""popxl.streams: host <-> device streams."""
from .creation import DeviceToHostStream, HostToDeviceStream, d2h_stream, h2d_stream

__all__ = ["DeviceToHostStream", "HostToDeviceStream", "d2h_stream", "h2d_stream"]
