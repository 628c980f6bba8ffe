"""Every collective against numpy, per op and dtype, on 4 replicas, on each device."""
from __future__ import annotations

import math

import numpy as np
import pytest
from .programs import random_data, run_per_replica

from compiler import popxl
from compiler.ops.collectives import reduce_over_replicas
from compiler.popxl import ops

R = 4
DEVICES = ["interpreter", "cpu"]
FLOATS = ["float32", "float16", "float64"]
INTS = ["int32"]


def numpy_reduce(op: str, xs: np.ndarray) -> np.ndarray:
    """What an all-reduce over the leading (replica) axis means, written independently of the op."""
    dt = xs.dtype
    if op == "add":
        out = xs[0]
        for x in xs[1:]:
            out = (out + x).astype(dt)
        return out
    if op == "mean":
        s = numpy_reduce("add", xs)
        return (s // len(xs)).astype(dt) if dt.kind in "iu" else (s / dt.type(len(xs))).astype(dt)
    if op == "square_add":
        return numpy_reduce("add", (xs * xs).astype(dt))
    if op == "mul":
        out = xs[0]
        for x in xs[1:]:
            out = (out * x).astype(dt)
        return out
    return {"min": np.min, "max": np.max, "and": np.all, "or": np.any}[op](xs, axis=0)


CASES = [(op, dt) for op in ("add", "mean", "mul", "min", "max", "square_add") for dt in FLOATS + INTS]
CASES += [("and", "bool"), ("or", "bool")]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op,dtype", CASES)
@pytest.mark.parametrize("inplace", [False, True])
def test_all_reduce(device, op, dtype, inplace):
    data = random_data((R, 3, 5), dtype)
    fn = ops.collectives.replicated_all_reduce_ if inplace else ops.collectives.replicated_all_reduce
    out, x_after = run_per_replica(data, lambda x: fn(x, op=op), R, device)
    want = numpy_reduce(op, data)
    assert out.dtype == data.dtype and out.shape == data.shape
    for r in range(R):
        np.testing.assert_array_equal(out[r], want)
    np.testing.assert_array_equal(x_after, np.broadcast_to(want, data.shape) if inplace else data)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", ["float32", "float16", "int32"])
@pytest.mark.parametrize("op", ["add", "mean", "max"])
def test_reduce_scatter_pads_the_tail(device, op, dtype):
    data = random_data((R, 3, 5), dtype)  # 15 elements: 4 shards of 4, the last with one zero of padding
    out, _ = run_per_replica(data, lambda x: ops.collectives.replicated_reduce_scatter(x, op=op), R, device)
    full = np.zeros(16, data.dtype)
    full[:15] = numpy_reduce(op, data).reshape(-1)
    np.testing.assert_array_equal(out, full.reshape(R, 4))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", ["float32", "float16", "int32", "bool"])
def test_all_gather_modes(device, dtype):
    data = random_data((R, 2, 3), dtype)
    cases = [("new_axis", 0, data), ("concat", 0, np.concatenate(list(data), axis=0)),
             ("concat", 1, np.concatenate(list(data), axis=1)), ("auto", 0, np.concatenate(list(data)))]
    for mode, axis, want in cases:
        def build(x, axis=axis, mode=mode):
            return ops.collectives.replicated_all_gather(x, axis=axis, output_shape=mode)
        out, _ = run_per_replica(data, build, R, device)
        for r in range(R):
            np.testing.assert_array_equal(out[r], want, err_msg=f"{mode} axis={axis}")


@pytest.mark.parametrize("device", DEVICES)
def test_sharded_slice_then_meta_shape_gather_round_trips(device):
    data = random_data((R, 3, 5), "float32")
    def build(x):
        shard = ops.collectives.replica_sharded_slice(x)
        assert shard.shape == (math.ceil(15 / R),)
        return ops.collectives.replicated_all_gather(shard)  # auto: the shard's meta shape (3, 5)
    out, _ = run_per_replica(data, build, R, device)
    # replica m contributes slice m of its own x
    want = np.concatenate([np.pad(data[m].reshape(-1), (0, 1))[4 * m:4 * m + 4] for m in range(R)])[:15]
    for r in range(R):
        np.testing.assert_array_equal(out[r], want.reshape(3, 5))


@pytest.mark.parametrize("device", DEVICES)
def test_replicated_slice(device):
    data = random_data((R, 3, 8), "float32")
    out, _ = run_per_replica(data, lambda x: ops.collectives.replicated_slice(x, axis=1), R, device)
    for r in range(R):
        np.testing.assert_array_equal(out[r], data[r][:, 2 * r:2 * r + 2])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("stride,size", [(1, 2), (2, 2)])
def test_groups(device, stride, size):
    data = random_data((R, 4), "float32")
    def build(x):
        g = x.ir.replica_grouping(stride=stride, group_size=size)
        return ops.collectives.replicated_all_reduce(x, group=g)
    out, _ = run_per_replica(data, build, R, device)
    grouping = popxl.ReplicaGrouping(R, stride, size)
    for r in range(R):
        members = [m for m in range(R) if grouping.assignment[m] == grouping.assignment[r]]
        np.testing.assert_array_equal(out[r], numpy_reduce("add", data[members]))


def test_reference_combines_in_replica_order():
    """float16 addition is not associative: the result is ((x0 + x1) + x2) + x3, whatever thread comes first."""
    xs = [np.array([v], np.float16) for v in (2048.0, 1.0, 1.0, 1.0)]
    out = reduce_over_replicas("ReplicatedAllReduce", {"op": "add", "group": (1, 4), "replicas": 4}, xs)
    assert out[0][0] == np.float16(2048.0)  # each +1 rounds away at 2048 in float16


def test_print_names_and_bad_input():
    ir = popxl.Ir(replication=2)
    with ir.main_graph:
        x = popxl.variable(np.zeros((2, 3), np.float32), name="x")
        ops.collectives.replicated_all_reduce(x, op="mean")
        ops.collectives.replicated_all_reduce_(x)
        ops.collectives.replicated_reduce_scatter(x)
        ops.collectives.replicated_all_gather(x)
        with pytest.raises(ValueError, match="not a collective operation"):
            ops.collectives.replicated_all_reduce(x, op="median")
        with pytest.raises(ValueError, match="does not tile 2 replicas"):
            ir.replica_grouping(group_size=3)
    assert [op.kind for op in ir.core.main.ops] == ["ReplicatedAllReduce", "ReplicatedAllReduceInplace",
                                               "ReplicatedReduceScatter", "ReplicatedAllGather"]
