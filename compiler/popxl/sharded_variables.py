"""A Session's view of variables that `shard_weight_update` stores sharded (compiler/ir/sharding.py).

The host copy (get_tensor_data, checkpoints, write_variable_data) keeps the full, unsharded layout;
each replica's device buffer holds only its (k,) shard. Moving data between the two splits the full
array, or joins every replica's shard: the local replicas' directly, the other processes' (under
mpiexec) through one all-gather, so every rank must make the same calls, as with any collective.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from compiler.ir import Ir
from compiler.ir.sharding import ShardLayout


def layouts(exe: Any) -> dict[int, ShardLayout]:
    """The sharded variables of a compiled program (its optimised IR), by value id."""
    ir: Ir = exe.ir
    return dict(getattr(ir, "sharded_variables", {}))


def device_value(layout: ShardLayout | None, full: np.ndarray, replica: int) -> np.ndarray:
    """What replica `replica` (index over all replicas) holds of a variable whose host value is `full`."""
    return full if layout is None else layout.split(full)[replica]


def gather_full(layout: ShardLayout, local: list[np.ndarray], first: int, world: Any) -> np.ndarray:
    """The full array from the local replicas' shards (replicas first, first+1, ...) and, under MPI,
    every other process's."""
    if world is None:
        if len(local) != layout.replicas:
            raise RuntimeError(f"this process hosts {len(local)} of {layout.replicas} replicas but no MPI world "
                               "joins the others")
        return layout.join(local)
    attrs = {"group": (1, layout.replicas), "replicas": layout.replicas, "axis": 0, "mode": "new_axis",
             "out_shape": (layout.replicas, layout.shard)}
    every = world.exchange("ReplicatedAllGather", attrs, [np.ascontiguousarray(x) for x in local], None)[0]
    return layout.join(list(every))
