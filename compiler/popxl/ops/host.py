"""Host transfers and initialisation: host_load, host_store, init."""
from __future__ import annotations

from typing import Any

from compiler.ir import as_dtype

from ..context import gcg
from ..creation import DeviceToHostStream, HostToDeviceStream
from ..tensor import Tensor
from ._emit import emit_op, out


def init(shape: Any, dtype: Any, name: str | None = None, init_type: str = "zero", **_: Any) -> Tensor:
    return out(emit_op("Init", {}, {"shape": tuple(int(s) for s in shape), "dtype": as_dtype(dtype),
                                    "init_type": init_type}, name="init", out_names=[name or "init"]))


def host_load(h2d_stream: HostToDeviceStream, name: str | None = None) -> Tensor:
    if not isinstance(h2d_stream, HostToDeviceStream):
        raise TypeError(f"host_load needs a stream from popxl.h2d_stream, got {type(h2d_stream).__name__}")
    base = name or h2d_stream.name
    t = init(h2d_stream.shape, h2d_stream.dtype, f"{base}_init", "undef")
    return out(emit_op("HostLoad", {"t": t}, {"stream": h2d_stream.name, **_transfer("HostLoad", h2d_stream)},
                       name="host_load", out_names=[f"{base}_hostload"]))


def _transfer(kind: str, stream: Any) -> dict[str, int]:
    """The k-th load (store) of a stream in one execution of the main graph reads (writes) the k-th of that
    execution's host transfers (PopXL: a program that loads a stream GA times uses GA transfers per run)."""
    k = sum(1 for op in gcg().ir.core.main.ops if op.kind == kind and op.attrs["stream"] == stream.name)
    return {"transfer": k} if k else {}


def host_store(d2h_stream: DeviceToHostStream, t: Tensor) -> None:
    if not isinstance(d2h_stream, DeviceToHostStream):
        raise TypeError(f"host_store needs a stream from popxl.d2h_stream, got {type(d2h_stream).__name__}")
    if t.spec != d2h_stream.spec:
        raise ValueError(f"host_store: tensor {t.name!r} {t.spec} does not match stream {d2h_stream.name!r} "
                         f"{d2h_stream.spec}")
    # builds inside a subgraph too (as host_load, and as PopXL); the verifier refuses a Session over it
    # a second host_store of the stream in one execution sends its next host transfer (as in PopXL)
    emit_op("HostStore", {"t": t}, {"stream": d2h_stream.name, **_transfer("HostStore", d2h_stream)},
            name="host_store")
