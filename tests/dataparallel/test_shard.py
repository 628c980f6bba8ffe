"""CompileOptions(shard_weight_update=True) in one process: training is bit for bit the unsharded
program's (elementwise optimizers), state lives in 1/N shards, the host sees the full layout, and
checkpoints move between replica counts. Under mpiexec: test_shard_mpi.py."""
from __future__ import annotations

import numpy as np
import pytest

from compiler import popxl
from compiler.driver import CompileOptions

from .shard_programs import SHAPES, gradients, program, train, variables
from .test_tutorial import B, train_program

STEPS = 4


def assert_identical(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for n in a:
        assert a[n].shape == b[n].shape and a[n].dtype == b[n].dtype, n
        assert np.array_equal(a[n], b[n]), f"{n}: max difference {np.abs(a[n] - b[n]).max()}"


@pytest.mark.parametrize("replicas", [2, 3, 4])
@pytest.mark.parametrize("optimizer,state_dtype", [("adam", popxl.float16), ("adam", popxl.float32),
                                                   ("sgd", popxl.float32)])
def test_bit_identical_to_the_unsharded_program(replicas, optimizer, state_dtype):
    kw = dict(optimizer=optimizer, state_dtype=state_dtype)
    want, _ = train(replicas, STEPS, False, **kw)
    got, sess = train(replicas, STEPS, True, **kw)
    assert len(sess._sharded) == (2 if optimizer == "adam" else 1) * len(SHAPES)
    assert_identical(got, want)
    moved = variables(popxl.Session(program(replicas, **kw)[0], "cpu"))  # the initial values
    assert all(not np.array_equal(got[f"w{k}"], moved[f"w{k}"]) for k in range(len(SHAPES)))


def test_interleaved_and_unread_weights_are_identical_too():
    for kw in (dict(interleaved=True), dict(read_weights=False)):
        assert_identical(train(3, STEPS, True, optimizer="sgd", **kw)[0],
                         train(3, STEPS, False, optimizer="sgd", **kw)[0])


def test_lamb_is_left_unsharded_and_still_trains_alike():
    got, sess = train(2, 2, True, optimizer="lamb")
    assert not sess._sharded
    assert_identical(got, train(2, 2, False, optimizer="lamb")[0])


def test_matches_the_interpreter():
    """Differential: the sharded native program, the sharded program on the interpreter, and the
    unsharded program on the interpreter agree bit for bit (elementwise float32 arithmetic)."""
    kw = dict(optimizer="adam", shapes=[(7,), (33, 5), (3,)])
    native, _ = train(3, 2, True, **kw)
    interp, sess = train(3, 2, True, device="interpreter", **kw)
    assert sess._sharded
    assert_identical(native, interp)
    assert_identical(native, train(3, 2, False, device="interpreter", **kw)[0])


def test_state_is_stored_as_shards():
    replicas = 4
    _, sess = train(replicas, 1, True, optimizer="adam", state_dtype=popxl.float16)
    for vid, layout in sess._sharded.items():
        full = sess._host[vid]
        shards = [dev[vid] for dev in sess._devs]
        assert all(s.shape == (layout.shard,) for s in shards)
        assert all(s.nbytes * replicas - full.nbytes < replicas * full.itemsize for s in shards)  # 1/N + padding
        np.testing.assert_array_equal(layout.join(shards), full)
    steps = [vid for n, vid in sess._names().items() if n.endswith(".step")]
    assert steps and all(dev[vid].shape == () for vid in steps for dev in sess._devs)  # replicated scalars


def test_host_side_reads_and_writes_use_the_full_layout():
    ir, h = program(3, "sgd")
    sess = popxl.Session(ir, "cpu", options=CompileOptions(shard_weight_update=True))
    (vid, layout), *_ = sess._sharded.items()
    value = sess.ir.core.main.values[vid]
    data = np.arange(np.prod(layout.shape), dtype=np.float32).reshape(layout.shape)
    with sess:
        sess.write_variable_data(value, data)
        for r, dev in enumerate(sess._devs):
            np.testing.assert_array_equal(dev[vid], layout.split(data)[r])
        np.testing.assert_array_equal(sess.get_tensor_data(value), data)
        sess.run(gradients(ir, h, 0))
        after = sess.get_tensor_data(value)
    assert after.shape == layout.shape and not np.array_equal(after, data)
    with pytest.raises(ValueError, match=r"expected float32\(7,\)"):
        sess.write_variable_data(value, np.zeros((3,), np.float32))


def _continue(path, replicas: int, shard: bool, steps: int = 2) -> dict[str, np.ndarray]:
    ir, h = program(replicas, "adam")
    sess = popxl.Session(ir, "cpu", options=CompileOptions(shard_weight_update=shard))
    with sess:
        sess.load_checkpoint(path)
        for step in range(steps):
            sess.run(gradients(ir, h, 100 + step))
    return variables(sess)


def test_checkpoint_from_n_replicas_resumes_on_m_or_one(tmp_path):
    want, sess = train(4, 3, True, optimizer="adam")
    path = sess.save_checkpoint(tmp_path / "ckpt")
    with np.load(path) as z:  # the full, unsharded layout in the file
        assert sorted(tuple(z[k].shape) for k in z.files if k != "__manifest__") == \
            sorted(a.shape for a in want.values())
    for replicas, shard in ((2, True), (3, True), (1, False), (4, False)):
        ir, _ = program(replicas, "adam")
        s = popxl.Session(ir, "cpu", options=CompileOptions(shard_weight_update=shard))
        with s:
            s.load_checkpoint(path)
            assert_identical(variables(s), want)
    # resuming sharded continues exactly as resuming unsharded
    assert_identical(_continue(path, 2, True), _continue(path, 2, False))


def test_the_tutorial_trains_identically():
    """The data-parallel tutorial (cached Adam graphs, float16 first moments, gradient accumulation)."""
    def run(shard: bool) -> dict[str, np.ndarray]:
        np.random.seed(0)
        ir, (img, lab), _, _ = train_program(2, 2, B)
        sess = popxl.Session(ir, "cpu", options=CompileOptions(shard_weight_update=shard))
        rng = np.random.default_rng(1)
        with sess:
            for _ in range(3):
                x = rng.standard_normal((2, 2, B, 28, 28)).astype(np.float32)
                y = rng.integers(0, 10, (2, 2, B)).astype(np.int32)
                sess.run({img: x, lab: y})
        out = variables(sess)
        return {n: a for n, a in out.items() if not n.startswith("accum.")}  # see docs/sharding.md

    assert_identical(run(True), run(False))


@pytest.mark.parametrize("level", [1, 3])
def test_other_pipeline_levels(level):
    """Level 1 (no inlining pass before it) and level 3 (horizontal fusion after it) give the same bits."""
    def run(shard: bool) -> dict[str, np.ndarray]:
        ir, h = program(2, "adam", shapes=[(7,), (33, 5), (3,)])
        sess = popxl.Session(ir, "cpu", options=CompileOptions(level=level, shard_weight_update=shard))
        with sess:
            for step in range(2):
                sess.run(gradients(ir, h, step))
        assert bool(sess._sharded) == shard
        return variables(sess)

    assert_identical(run(True), run(False))


@pytest.mark.parametrize("seed", range(4))
def test_random_programs_are_bit_identical(seed):
    """Random weight shapes (1-3 dims, 2..3000 elements), replica counts, optimizers, state dtypes and
    program orders: sharded and unsharded agree bit for bit, compiled and on the interpreter."""
    rng = np.random.default_rng(seed)
    shapes = [tuple(int(d) for d in rng.integers(1, 15, rng.integers(1, 4))) for _ in range(rng.integers(2, 6))]
    shapes = [s if int(np.prod(s)) > 1 else (2,) for s in shapes]
    kw = dict(optimizer=str(rng.choice(["sgd", "adam"])), shapes=shapes,
              state_dtype=popxl.float16 if rng.random() < 0.5 else popxl.float32,
              interleaved=bool(rng.random() < 0.3), read_weights=bool(rng.random() < 0.8), seed=seed)
    replicas = int(rng.integers(2, 5))
    got, sess = train(replicas, 2, True, **kw)
    assert sess._sharded, kw
    assert_identical(got, train(replicas, 2, False, **kw)[0])
    assert_identical(got, train(replicas, 2, True, device="interpreter", **kw)[0])
