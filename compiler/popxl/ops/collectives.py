"""popxl.ops.collectives: reductions, gathers and slices across data-parallel replicas.

`group` is a ReplicaGrouping (None: all replicas of the Ir). The group is fixed when the op is built,
as in PopXL, so set `ir.replication_factor` before building collectives.
"""
from __future__ import annotations

import math
from typing import Any

from compiler.ops import OpError
from compiler.ops.collectives import REDUCE_OPS

from ..context import gcg
from ..replica_grouping import ReplicaGrouping
from ..tensor import Tensor
from ._emit import emit_op, out

OUTPUT_SHAPES = ("auto", "new_axis", "concat", "meta_shape")


def _group(group: Any, what: str) -> dict[str, Any]:
    n = gcg().ir.replication_factor
    if group is None:
        return {"group": (1, n), "replicas": n}
    if not isinstance(group, ReplicaGrouping):
        raise TypeError(f"{what}: group must be a popxl ReplicaGrouping (ir.replica_grouping(...)) or None, "
                        f"got {type(group).__name__}")
    if group.num_replicas != n:
        raise ValueError(f"{what}: {group} was made for {group.num_replicas} replicas but the Ir has "
                         f"replication_factor {n}")
    return {"group": group.key, "replicas": n}


def _op(op: Any, what: str) -> str:
    name = str(getattr(op, "name", op)).lower()
    if name not in REDUCE_OPS:
        raise ValueError(f"{what}: op={op!r} is not a collective operation; use one of {', '.join(REDUCE_OPS)}")
    return name


def _tensor(t: Any, what: str) -> Tensor:
    if not isinstance(t, Tensor):
        raise TypeError(f"{what}: t must be a popxl Tensor, got {type(t).__name__}")
    return t


def replicated_all_reduce(t: Tensor, op: str = "add", group: ReplicaGrouping | None = None) -> Tensor:
    """out = reduce(op, t over the replicas of `group`); every member gets the result."""
    _tensor(t, "replicated_all_reduce")
    attrs = {"op": _op(op, "replicated_all_reduce"), **_group(group, "replicated_all_reduce")}
    return out(emit_op("ReplicatedAllReduce", {"t": t}, attrs, name="replicated_all_reduce",
                       out_names=[f"{t.name}_all_reduce"]))


def replicated_all_reduce_(t: Tensor, op: str = "add", group: ReplicaGrouping | None = None) -> Tensor:
    """t <- reduce(op, t over the replicas of `group`), in place on t."""
    _tensor(t, "replicated_all_reduce_")
    attrs = {"op": _op(op, "replicated_all_reduce_"), **_group(group, "replicated_all_reduce_")}
    return out(emit_op("ReplicatedAllReduceInplace", {"t": t}, attrs, name="replicated_all_reduce_inplace",
                       out_names=[f"{t.name}_all_reduce"]))


def replicated_reduce_scatter(t: Tensor, op: str = "add", group: ReplicaGrouping | None = None,
                              configure_output_for_replicated_tensor_sharding: bool = False) -> Tensor:
    """Flatten t, reduce it over the group, and give member m the m-th of `size` slices of
    ceil(numel / size) elements (the last one padded with zeros)."""
    _tensor(t, "replicated_reduce_scatter")
    attrs = {"op": _op(op, "replicated_reduce_scatter"), **_group(group, "replicated_reduce_scatter"),
             "rts": bool(configure_output_for_replicated_tensor_sharding)}
    o = out(emit_op("ReplicatedReduceScatter", {"t": t}, attrs, name="replicated_reduce_scatter",
                    out_names=[f"{t.name}_reduce_scattered"]))
    if configure_output_for_replicated_tensor_sharding:
        _set_meta_shape(o, t.shape)
    return o


def _set_meta_shape(t: Tensor, shape: tuple[int, ...]) -> None:
    """The full shape a replica-sharded tensor stands for (kept on the Ir: handles are recreated)."""
    t.ir.core.meta.setdefault("meta_shape", {})[t._value.id] = tuple(shape)


def meta_shape(t: Tensor) -> tuple[int, ...] | None:
    return t.ir.core.meta.get("meta_shape", {}).get(t._value.id)


def replicated_all_gather(t: Tensor, axis: int = 0, group: ReplicaGrouping | None = None,
                          output_shape: str = "auto") -> Tensor:
    """Every member gets all members' t: stacked on a new axis 0 ("new_axis"), concatenated along `axis`
    ("concat"), or reassembled to t.meta_shape ("meta_shape"); "auto" = meta_shape if t has one."""
    _tensor(t, "replicated_all_gather")
    g = _group(group, "replicated_all_gather")
    size = g["group"][1]
    if output_shape not in OUTPUT_SHAPES:
        raise ValueError(f"replicated_all_gather: output_shape={output_shape!r}; use one of {OUTPUT_SHAPES}")
    meta = meta_shape(t)
    mode = ("meta_shape" if meta else "concat") if output_shape == "auto" else output_shape
    if mode == "new_axis":
        shape: tuple[int, ...] = (size, *t.shape)
    elif mode == "concat":
        if not -t.rank <= axis < t.rank:
            raise OpError(f"replicated_all_gather: axis {axis} is out of range for {t.name!r} of shape {t.shape}")
        s = list(t.shape)
        s[axis] *= size
        shape = tuple(s)
    else:
        if not meta:
            raise ValueError(f"replicated_all_gather(output_shape='meta_shape'): {t.name!r} has no meta_shape; "
                             "it is set on the result of replicated_reduce_scatter(..., "
                             "configure_output_for_replicated_tensor_sharding=True)")
        if math.ceil(math.prod(meta) / size) != t.nelms:
            raise OpError(f"replicated_all_gather: shard {t.name!r} of {t.nelms} elements is not 1/{size} of "
                          f"meta shape {tuple(meta)}")
        shape = tuple(meta)
    attrs = {**g, "axis": int(axis), "mode": mode, "out_shape": shape}
    return out(emit_op("ReplicatedAllGather", {"t": t}, attrs, name="replicated_all_gather",
                       out_names=[f"{t.name}_all_gathered"]))


def replica_sharded_slice(t: Tensor, group: ReplicaGrouping | None = None) -> Tensor:
    """This replica's slice (member m: the m-th of `size`) of flattened t, padded as reduce_scatter."""
    _tensor(t, "replica_sharded_slice")
    o = out(emit_op("ReplicaShardedSlice", {"t": t}, _group(group, "replica_sharded_slice"),
                    name="replica_sharded_slice", out_names=[f"{t.name}_sharded_slice"]))
    _set_meta_shape(o, t.shape)
    return o


def replicated_slice(t: Tensor, axis: int = 0, group: ReplicaGrouping | None = None) -> Tensor:
    """This replica's part (member m: the m-th of `size`) of t split evenly along `axis`."""
    _tensor(t, "replicated_slice")
    attrs = {**_group(group, "replicated_slice"), "axis": int(axis)}
    return out(emit_op("ReplicatedSlice", {"t": t}, attrs, name="replicated_slice",
                       out_names=[f"{t.name}_replicated_slice"]))


__all__ = ["replicated_all_reduce", "replicated_all_reduce_", "replicated_reduce_scatter",
           "replicated_all_gather", "replica_sharded_slice", "replicated_slice", "ReplicaGrouping"]
