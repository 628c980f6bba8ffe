"""Checkpoints lose nothing: 100 steps + checkpoint + 100 steps in a fresh Session == 200 steps, bit for
bit (optimizer state and step counters included); a writer killed mid-save leaves the previous
checkpoint loadable; damaged or mismatched files are refused with a clear CheckpointError."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from compiler import addons, popxl
from compiler.popxl import ops
from runtime.checkpoint import CheckpointError, load, read, save

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples"))
from custom_optimiser import Adam  # noqa: E402  (the PopXL tutorial's optimizer)


def adam_program(n: int = 1000):
    """The tutorial's Adam on one weight whose gradient comes in through a host stream."""
    ir = popxl.Ir()
    with ir.main_graph:
        w = popxl.variable(np.linspace(-1, 1, n, dtype=np.float32), name="w")
        h = popxl.h2d_stream((n,), popxl.float32, name="grad")
        facts, graph = Adam(cache=True).create_graph(w, w.spec, lr=1e-2)
        graph.bind(facts.init()).call(w, ops.host_load(h, "grad"))
    return ir, [h], w


class MLP(addons.Module):
    def build(self, x: popxl.Tensor) -> popxl.Tensor:
        w1 = self.add_variable_input("w1", lambda: np.random.default_rng(1).normal(0, 0.3, (16, 32)), popxl.float32)
        w2 = self.add_variable_input("w2", lambda: np.random.default_rng(2).normal(0, 0.3, (32, 10)), popxl.float32)
        return ops.gelu(x @ w1) @ w2


def mlp_program():
    """A two-layer MLP trained with cross-entropy, autodiff and the tutorial's Adam per weight."""
    ir = popxl.Ir()
    with ir.main_graph:
        hx = popxl.h2d_stream((8, 16), popxl.float32, name="x")
        hy = popxl.h2d_stream((8,), popxl.int32, name="y")
        x, y = ops.host_load(hx, "x"), ops.host_load(hy, "y")
        facts, fwd = MLP().create_graph(x)
        bwd = addons.autodiff(fwd)
        params = facts.init()
        info = fwd.bind(params).call_with_info(x)
        _, dx = addons.ops.cross_entropy_with_grad(info.outputs[0], y)
        grads = bwd.grad_graph_info.fwd_parent_ins_to_grad_parent_outs(
            info, bwd.call_with_info(dx, args=bwd.grad_graph_info.inputs_dict(info)))
        for w in params.tensors:
            f, g = Adam(cache=True).create_graph(w, w.spec, lr=1e-2)
            g.bind(f.init()).call(w, grads[w])
    return ir, [hx, hy], params.tensors[0]


def batch(program, step: int) -> list[np.ndarray]:
    rng = np.random.default_rng(step)
    if program is adam_program:
        return [np.sin(np.arange(1000, dtype=np.float32) * (step + 1) * 0.01).astype(np.float32)]
    return [rng.normal(size=(8, 16)).astype(np.float32), rng.integers(0, 10, 8).astype(np.int32)]


def train(program, device, steps, start=0, session=None, handles=None):
    ir, hs, w = handles or program()
    s = session or popxl.Session(ir, device)
    with s:
        for k in range(start, start + steps):
            s.run(dict(zip(hs, batch(program, k))))
    return s, (ir, hs, w)


@pytest.mark.parametrize("program,device", [(adam_program, "cpu"), (adam_program, "interpreter"), (mlp_program, "cpu")])
def test_resume_in_a_fresh_session_is_bit_identical(program, device, tmp_path):
    straight, (ir, _, _) = train(program, device, 200)
    first, _ = train(program, device, 100)
    first.save_checkpoint(tmp_path / "ck.npz")
    fresh = program()
    s = popxl.Session(fresh[0], device)
    s.load_checkpoint(tmp_path / "ck.npz")
    resumed, _ = train(program, device, 100, start=100, session=s, handles=fresh)
    names = {ir.core.main.values[v].name: v for v in ir.core.variables}
    assert any("step" in n for n in names) and len(names) >= 4  # weights, both moments, the step counter
    for n, vid in names.items():
        want = straight._host[vid]
        got = resumed._host[{fresh[0].core.main.values[v].name: v for v in fresh[0].core.variables}[n]]
        assert got.dtype == want.dtype and np.array_equal(got, want), n


def test_checkpoint_holds_every_variable_with_a_manifest(tmp_path):
    s, (ir, _, _) = train(adam_program, "cpu", 3)
    path = s.save_checkpoint(tmp_path / "ck")  # ".npz" is added
    assert path == tmp_path / "ck.npz"
    manifest, data = read(tmp_path / "ck")
    assert manifest["format"] == "optgraph-checkpoint" and manifest["version"] == 2
    want = {ir.core.main.values[v].name: s._host[v] for v in ir.core.variables}
    assert [e["name"] for e in manifest["variables"]] == list(want)
    for e in manifest["variables"]:
        assert e["shape"] == list(want[e["name"]].shape) and e["dtype"] == str(want[e["name"]].dtype)
        assert np.array_equal(data[e["name"]], want[e["name"]])
    step = next(a for n, a in data.items() if "step" in n)
    assert step == 3.0


def test_bfloat16_round_trips(tmp_path):
    import ml_dtypes

    a = np.linspace(-3, 3, 7).astype(ml_dtypes.bfloat16)
    save(tmp_path / "b.npz", {"a": a})
    got = load(tmp_path / "b.npz", {"a": ((7,), a.dtype)})["a"]
    assert got.dtype == a.dtype and np.array_equal(got.view(np.uint16), a.view(np.uint16))


def test_mismatches_are_all_reported_and_nothing_is_loaded(tmp_path):
    save(tmp_path / "ck.npz", {"w": np.zeros(500, np.float32), "extra": np.zeros(2, np.float32),
                               "step": np.zeros((), np.float64)})
    ir, _, w = adam_program()
    s = popxl.Session(ir, "interpreter")
    before = {v: a.copy() for v, a in s._host.items()}
    with pytest.raises(CheckpointError) as e:
        s.load_checkpoint(tmp_path / "ck.npz")
    msg = str(e.value)
    assert "'w': checkpoint has float32(500,), the program needs float32(1000,)" in msg
    assert "the program does not have: ['extra']" in msg and "missing variable" in msg
    assert all(np.array_equal(s._host[v], a) for v, a in before.items())


def _damaged(tmp: Path) -> dict[str, Path]:
    good = save(tmp / "good.npz", {"w": np.arange(1000, dtype=np.float32), "m": np.ones(10, np.float16)})
    raw = good.read_bytes()
    files = {"junk": b"not a zip at all", "truncated": raw[: len(raw) // 2], "empty": b""}
    flipped = bytearray(raw)
    flipped[200] ^= 0xFF  # inside w's data: the zip CRC no longer matches
    files["flipped byte"] = bytes(flipped)
    out = {k: tmp / f"{k.replace(' ', '_')}.npz" for k in files}
    for k, p in out.items():
        p.write_bytes(files[k])
    np.savez(tmp / "plain.npz", w=np.zeros(3))  # an npz that is not a checkpoint
    out["no manifest"] = tmp / "plain.npz"
    with zipfile.ZipFile(good) as z, zipfile.ZipFile(tmp / "lying.npz", "w") as o:  # manifest names a missing array
        for item in z.infolist():
            if item.filename != "v1.npy":  # the second variable's array
                o.writestr(item, z.read(item.filename))
    out["manifest lists a missing array"] = tmp / "lying.npz"
    return out


@pytest.mark.parametrize("case", ["junk", "truncated", "empty", "flipped byte", "no manifest",
                                  "manifest lists a missing array"])
def test_damaged_files_raise_checkpointerror(case, tmp_path):
    path = _damaged(tmp_path)[case]
    with pytest.raises(CheckpointError, match=str(path.name)):
        load(path, {"w": ((1000,), np.dtype(np.float32)), "m": ((10,), np.dtype(np.float16))})


def test_a_crash_before_the_rename_keeps_the_old_checkpoint(tmp_path):
    """Deterministic: the writer dies after writing and fsyncing the new data, just before the rename."""
    path = tmp_path / "ck.npz"
    save(path, {"w": np.full(3, 42.0, np.float32)})
    code = (f"import os, signal, sys, numpy as np; sys.path.insert(0, {str(ROOT)!r}); import runtime.checkpoint as c\n"
            "os.replace = lambda a, b: os.kill(os.getpid(), signal.SIGKILL)\n"
            f"c.save({str(path)!r}, {{'w': np.zeros(3, np.float32)}})")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120)
    assert r.returncode == -signal.SIGKILL
    assert load(path, {"w": ((3,), np.dtype(np.float32))})["w"][0] == 42.0
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # the dead writer's temporary file


WRITER = r"""
import sys, numpy as np
sys.path.insert(0, %r)
from runtime.checkpoint import save
big = {f"a{i}": np.full(2_000_000, i, np.float32) for i in range(8)}  # 64 MB per checkpoint
print("ready", flush=True)
k = 0
while True:
    save(sys.argv[1], big)
    k += 1
    print(f"saved {k}", flush=True)
"""


def test_a_writer_killed_at_random_moments_leaves_a_complete_checkpoint(tmp_path):
    """Killed at random moments, the file holds the old or the new checkpoint, whole; once the writer has
    reported a save complete, the file holds the new one (a save is durable when it returns)."""
    path = tmp_path / "ck.npz"
    save(path, {"a0": np.full(3, 42.0, np.float32)})
    seen = set()
    for delay in (0.05, 0.2, 0.5, 1.0, "after the first save"):
        p = subprocess.Popen([sys.executable, "-c", WRITER % str(ROOT), str(path)], stdout=subprocess.PIPE, text=True)
        assert p.stdout.readline().strip() == "ready"
        if delay == "after the first save":  # certain to kill with a completed save behind it
            assert p.stdout.readline().strip() == "saved 1"
        else:
            time.sleep(delay)
        os.kill(p.pid, signal.SIGKILL)
        completed = sum(line.startswith("saved") for line in p.stdout.read().splitlines())
        completed += delay == "after the first save"
        p.wait()
        manifest, data = read(path)  # whatever finished last is a complete, consistent checkpoint
        if set(data) == {"a0"}:
            assert data["a0"][0] == 42.0
            assert not completed, f"killed after {delay}: {completed} saves had returned, the file is the old one"
            seen.add("old")
        else:
            assert set(data) == {f"a{i}" for i in range(8)}
            assert all(np.all(data[f"a{i}"] == i) for i in range(8))
            seen.add("new")
    assert "new" in seen  # the last trial killed the writer after a completed save
