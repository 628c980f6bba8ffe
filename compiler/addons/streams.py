"""InputStreams / OutputStreams (named host streams) and host_store (a d2h stream for a tensor)."""
from __future__ import annotations

from typing import Any, Iterable

from compiler import popxl


class _Streams(dict):
    """name -> stream, insertion ordered; attribute access by name, int/slice by position."""

    _direction = ""

    def __init__(self, **streams: tuple[tuple[int, ...], Any]) -> None:
        super().__init__()
        make = popxl.h2d_stream if self._direction == "h2d" else popxl.d2h_stream
        for name, (shape, dtype) in streams.items():
            self[name] = make(shape, dtype, name=name)

    @classmethod
    def from_streams(cls, streams: Iterable[Any]) -> "_Streams":
        out = cls()
        for s in streams:
            out[s.tensor_id] = s
        return out

    def __getattr__(self, key: str) -> Any:
        try:
            return dict.__getitem__(self, key)
        except KeyError:
            raise AttributeError(f"no stream {key!r}; streams: {list(self.keys())}") from None

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, (int, slice)):
            return list(self.values())[key]
        return dict.__getitem__(self, key)

    def __iter__(self):  # iterating gives the streams, as popxl.addons
        return iter(list(self.values()))


class InputStreams(_Streams):
    _direction = "h2d"


class OutputStreams(_Streams):
    _direction = "d2h"


def host_store(t: popxl.Tensor) -> popxl.DeviceToHostStream:
    """A new d2h stream of t's shape and dtype (named after t) that receives t."""
    d2h = popxl.d2h_stream(t.shape, t.dtype, name=f"{t.name}_stream")
    popxl.ops.host_store(d2h, t)
    return d2h
