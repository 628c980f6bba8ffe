"""Small replicated programs shared by the data-parallel tests."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from compiler import popxl


def per_replica_program(data: np.ndarray, build: Callable[[popxl.Tensor], popxl.Tensor], replicas: int
                        ) -> tuple[popxl.Ir, Any, Any]:
    """A variable holding data[r] on replica r, `build` applied to it, the result stored to stream "out"."""
    ir = popxl.Ir(replication=replicas)
    with ir.main_graph:
        x = popxl.variable(data, name="x", downcast=False, replica_grouping=ir.replica_grouping(group_size=1))
        y = build(x)
        s = popxl.d2h_stream(y.shape, y.dtype, "out")
        popxl.ops.host_store(s, y)
    return ir, x, s


def run_per_replica(data: np.ndarray, build: Callable[[popxl.Tensor], popxl.Tensor], replicas: int,
                    device: str) -> tuple[np.ndarray, np.ndarray]:
    """(every replica's output stacked, every replica's x after the run)."""
    ir, x, s = per_replica_program(data, build, replicas)
    sess = popxl.Session(ir, device)
    with sess:
        out = sess.run()[s]
    return out, sess.get_tensor_data(x)


def random_data(shape: tuple[int, ...], dtype: str, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if dtype == "bool":
        return rng.random(shape) < 0.5
    if np.dtype(dtype).kind in "iu":
        return rng.integers(-3 if np.dtype(dtype).kind == "i" else 0, 4, shape).astype(dtype)
    return (rng.standard_normal(shape) + 0.5).astype(dtype)
