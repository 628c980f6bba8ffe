"""How a Session's host data maps onto replicas: stream arrays shaped
(num_host_transfers?, replicas?, *stream_shape), each leading dim present only when > 1, and variables
with one value per replica (or per replica group)."""
from __future__ import annotations

from typing import Any

import numpy as np

from compiler.driver import processes
from compiler.ir import Ir
from compiler.ops.collectives import group_index


def local_replicas(ir: Ir) -> tuple[int, int]:
    """(replicas hosted by this process, index of its first replica). Under `mpiexec -n P` process p
    hosts replicas p*N/P .. (p+1)*N/P - 1; a program with replication 1 runs on every process alone."""
    n = ir.replication_factor
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"ir.replication_factor must be a positive int, got {n!r}")
    if n == 1:
        return 1, 0
    rank, procs = processes()
    if n % procs:
        raise ValueError(f"replication_factor {n} is not divisible by the {procs} MPI processes; launch with "
                         f"mpiexec -n P where P divides {n}")
    return n // procs, rank * (n // procs)


def full_shape(ir: Ir, shape: tuple[int, ...]) -> tuple[int, ...]:
    """A stream's array shape for one Session.run: (num_host_transfers?, local replicas?, *shape)."""
    nht = ir.num_host_transfers
    reps = local_replicas(ir)[0]
    return (nht,) * (nht > 1) + (reps,) * (reps > 1) + tuple(shape)


def split_streams(ir: Ir, by_name: dict[str, np.ndarray], shapes: dict[str, tuple[int, ...]]
                  ) -> list[dict[str, np.ndarray]]:
    """Per local replica: each stream's (num_host_transfers, *shape) array."""
    nht = ir.num_host_transfers
    reps = local_replicas(ir)[0]
    out: list[dict[str, np.ndarray]] = [{} for _ in range(reps)]
    for name, a in by_name.items():
        a = a.reshape((nht, reps, *shapes[name]))
        for r in range(reps):
            out[r][name] = np.ascontiguousarray(a[:, r])
    return out


def merge_outputs(ir: Ir, outs: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Each output stream as one (num_host_transfers?, replicas?, *shape) array."""
    merged = {}
    for name in outs[0]:
        a = np.stack([o[name] for o in outs], axis=1)  # (nht, replicas, *shape)
        merged[name] = a.reshape(full_shape(ir, a.shape[2:]))
    return merged


def variable_groups(ir: Ir) -> dict[int, tuple[int, int, np.ndarray]]:
    """Variables created with a replica_grouping of more than one group: vid -> (stride, size, data per group)."""
    return ir.meta.get("replica_groups", {})


def initial_value(ir: Ir, vid: int, replica: int) -> np.ndarray:
    grouped = variable_groups(ir).get(vid)
    if grouped is None:
        return ir.variables[vid]
    stride, size, data = grouped
    return data[group_index(replica, stride, size)]


def group_members(ir: Ir, vid: int, first: int, reps: int) -> list[int] | None:
    """For a grouped variable, one local replica index per group (in group order), or None if ungrouped."""
    grouped = variable_groups(ir).get(vid)
    if grouped is None:
        return None
    stride, size, data = grouped
    pick: dict[int, int] = {}
    for r in range(first, first + reps):
        pick.setdefault(group_index(r, stride, size), r - first)
    if len(pick) != len(data):
        raise ValueError(f"variable {ir.main.values[vid].name!r} has {len(data)} replica groups but this process "
                         f"hosts replicas of only {len(pick)} of them")
    return [pick[g] for g in sorted(pick)]


def set_grouping(ir: Ir, vid: int, grouping: Any, data: np.ndarray) -> None:
    ir.meta.setdefault("replica_groups", {})[vid] = (grouping.stride, grouping.group_size, data)
