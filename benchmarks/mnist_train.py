"""Train the tutorial MLP (784-512-512-512-10, tanh-gelu; Adam lr 1e-3, eps 1e-5, no bias correction, as
the tutorial's optimiser_step) for one epoch with this compiler (examples/mnist_adam.py, device cpu) and with
PyTorch eager, from the same initial weights in the same batch order; report test accuracy and training
steps/s at batch 8 and 128, plus where our step's time goes.

  python benchmarks/mnist_train.py [--quick] [--data DIR] [--batches 8,128] [--threads 1,2] [--limit-steps N]
  python benchmarks/mnist_train.py --target-cpu host,haswell,x86-64-v2 [--batches 8,128] [--threads 1]
  python benchmarks/mnist_train.py --profile [--batches 8,128] [--threads 1,2]

Headline rows keep the same state dtypes on both sides: our Adam's first moment in float32, like torch's.
The tutorial's float16 first moment is a separate, labelled column. PyTorch runs the same update rule
(`TutorialAdam`, foreach ops), torch.optim.Adam (default and fused=True; bias-corrected) and the whole
step under torch.compile (its first calls, which compile, timed separately). torch runs at its defaults
apart from the thread count. "ours, epilogues off" is our step compiled with the matmul-epilogue passes
(inline_weight_updates, fuse_matmul_epilogue) switched off, at the same thread count; the details table
gives the memory plan's peak temporaries with those passes off and on (tools/report.py). Steps/s are
medians of rounds interleaved in one process on the same batches, with a 50 ms pause before each
variant (paused) and without (back to back).
"""
from __future__ import annotations

import argparse
import itertools
import os
import statistics
from functools import partial
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "examples", ROOT / "benchmarks"):
    sys.path.insert(0, str(p))
import mnist_adam  # noqa: E402
from common import PAUSE_S, Table, interleaved_ms, interleaved_samples, write_result  # noqa: E402

from compiler import popxl  # noqa: E402
from compiler.data import batches, stats  # noqa: E402
from compiler.driver import CompileOptions  # noqa: E402
from compiler.ir.clone import clone  # noqa: E402
from passes.pipeline import run_pipeline  # noqa: E402
from tools.report import EPILOGUE_PASSES, peak_bytes  # noqa: E402

LAYERS = ("fc1", "fc2", "fc3", "fc4")


def initial_weights(bs: int, seed: int) -> dict[str, np.ndarray]:
    """The initial variables mnist_adam.train draws for this seed, by name (fc1.weight, ...)."""
    np.random.seed(seed)
    ir, _, variables, _ = mnist_adam.train_ir(bs)
    return {k: ir.core.variables[t._value.id].copy() for k, t in variables.named_tensors.items()}


def torch_net(init: dict[str, np.ndarray]):
    import torch
    from torch import nn

    mods: list = [nn.Flatten()]
    for i, name in enumerate(LAYERS):
        w = init[f"{name}.weight"]
        lin = nn.Linear(*w.shape)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w.T.copy()))  # ours is (in, out), torch's (out, in)
            lin.bias.copy_(torch.from_numpy(init[f"{name}.bias"]))
        mods += [lin] + ([nn.GELU(approximate="tanh")] if i < 3 else [])
    return nn.Sequential(*mods)


def tutorial_adam(params, lr: float, betas=(0.9, 0.999), eps: float = 1e-5):
    """The tutorial's update in torch foreach ops: m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
    w -= lr m / (sqrt(v) + eps) (no bias correction, no weight decay)."""
    import torch

    class TutorialAdam(torch.optim.Optimizer):
        @torch.no_grad()
        def step(self):
            for group in self.param_groups:
                ps = [p for p in group["params"] if p.grad is not None]
                gs = [p.grad for p in ps]
                for p in ps:
                    if not self.state[p]:
                        self.state[p].update(m=torch.zeros_like(p), v=torch.zeros_like(p))
                ms = [self.state[p]["m"] for p in ps]
                vs = [self.state[p]["v"] for p in ps]
                torch._foreach_lerp_(ms, gs, 1 - betas[0])
                torch._foreach_mul_(vs, betas[1])
                torch._foreach_addcmul_(vs, gs, gs, value=1 - betas[1])
                denom = torch._foreach_sqrt(vs)
                torch._foreach_add_(denom, eps)
                torch._foreach_addcdiv_(ps, ms, denom, value=-lr)

    return TutorialAdam(params, {"lr": lr})


class TorchTrainer:
    def __init__(self, init: dict[str, np.ndarray], lr: float, optimiser: str) -> None:
        import torch

        self.torch = torch
        self.net = torch_net(init)
        self.opt = (tutorial_adam(self.net.parameters(), lr) if optimiser == "tutorial" else
                    torch.optim.Adam(self.net.parameters(), lr=lr, eps=1e-5, fused=optimiser == "fused"))
        self.loss_fn = torch.nn.CrossEntropyLoss()
        self._step = torch.compile(self._eager_step) if optimiser == "compiled" else self._eager_step

    def _eager_step(self, x, y):
        self.opt.zero_grad(set_to_none=True)
        loss = self.loss_fn(self.net(x), y)
        loss.backward()
        self.opt.step()
        return loss

    def step(self, x: np.ndarray, y: np.ndarray) -> float:
        return self._step(self.torch.from_numpy(x), self.torch.from_numpy(y.astype(np.int64))).item()

    def accuracy(self, test, mean: float, std: float) -> float:
        correct = total = 0
        with self.torch.no_grad():
            for x, y in batches(test, 80, mean, std, shuffle=False):
                correct += int((self.net(self.torch.from_numpy(x)).argmax(-1).numpy() == y).sum())
                total += len(y)
        return 100.0 * correct / total


def torch_epoch(train, test, mean, std, bs, lr, seed, limit, optimiser) -> dict:
    init = initial_weights(bs, seed)
    t = TorchTrainer(init, lr, optimiser)
    steps, t0 = 0, time.perf_counter()
    for x, y in batches(train, bs, mean, std, seed=seed):
        t.step(x, y)
        steps += 1
        if limit and steps >= limit:
            break
    dt = time.perf_counter() - t0
    return {"steps_per_s": steps / dt, "test_accuracy": t.accuracy(test, mean, std)}


def interleaved(train, mean, std, bs, lr, seed, threads, rounds: int, per_round: int, with_compile: bool) -> dict:
    """Median steps/s per round of `per_round` steps, every variant on the same batches, round by round,
    under both protocols (paused, back to back); torch.compile's first-call seconds."""
    data = list(b for _, b in zip(range(per_round), batches(train, bs, mean, std, seed=seed + 1)))
    init = initial_weights(bs, seed)
    runners, sessions = {}, []
    for name, dtype, skip in (("ours", popxl.float32, ()), ("ours fp16 m", popxl.float16, ()),
                              ("ours, epilogues off", popxl.float32, EPILOGUE_PASSES)):
        np.random.seed(seed)
        ir, streams, _, _ = mnist_adam.train_ir(bs, lr, dtype)
        sess = popxl.Session(ir, "cpu", options=CompileOptions(threads=threads, skip=skip))
        sess.__enter__()
        sessions.append(sess)
        feeds = [dict(zip(streams, b)) for b in data]
        runners[name] = partial(_steps, sess.run, [(f,) for f in feeds])
    kinds = {"torch": "tutorial", "torch.optim.Adam": "adam", "torch fused Adam": "fused"}
    if with_compile:
        kinds["torch.compile"] = "compiled"
    compile_s = None
    for name, kind in kinds.items():
        tr = TorchTrainer(init, lr, kind)
        if kind == "compiled":  # the first calls compile (and recompile once the optimizer has state)
            t0 = time.perf_counter()
            for x, y in data[:3]:
                tr.step(x, y)
            compile_s = time.perf_counter() - t0
        runners[name] = partial(_steps, tr.step, data)
    out = {"compile_s": compile_s}
    for protocol, pause in (("paused", PAUSE_S), ("back to back", 0.0)):
        samples = interleaved_samples(runners, rounds, reps=1, pause_s=pause)
        out[protocol] = {k: len(data) / statistics.median(v) for k, v in samples.items()}
    for sess in sessions:
        sess.__exit__(None, None, None)
    return out


def _steps(step, args: list) -> None:
    for a in args:
        step(*a)


PIECES = ("forward", "forward+backward", "adam", "step")


def torch_setup(data: str, bs: int, seed: int, count: int, lr: float = 1e-3):
    """One torch eager step with fused Adam per call, over `count` batches (isa_rows.py's workers)."""
    train, _ = mnist_adam.load_data(data)
    mean, std = stats(train)
    feeds = itertools.cycle([b for _, b in zip(range(count), batches(train, bs, mean, std, seed=seed + 1))])
    tr = TorchTrainer(initial_weights(bs, seed), lr, "fused")
    return lambda: tr.step(*next(feeds))


def isa_table(args, cpus: list[str], rounds: int) -> Table:
    """Our step (fp32 Adam state) compiled for each CPU, against torch eager + fused Adam restricted to
    the same ISA in its own process (isa_rows.py), alternating rounds."""
    from isa_rows import TORCH_FOR, TorchWorker, alternate, timed

    train, _ = mnist_adam.load_data(args.data)
    mean, std = stats(train)
    t = Table("isa", "MNIST training step per target CPU: steps/s (ours fp32 Adam state vs torch eager + fused "
              "Adam on the same ISA, each torch in its own process)",
              ["target", "threads", "batch", "ours", "torch ISA", "torch fused Adam", "ours / torch",
               "ours / ours host"])
    for threads in map(int, args.threads.split(",")):
        for bs in map(int, args.batches.split(",")):
            reps = 100 if bs <= 32 else 10
            data = [b for _, b in zip(range(reps), batches(train, bs, mean, std, seed=args.seed + 1))]
            setup = {"module": "mnist_train", "threads": threads,
                     "args": {"data": args.data, "bs": bs, "seed": args.seed, "count": reps}}
            workers = {isa: TorchWorker(isa, setup) for isa in sorted({TORCH_FOR[c] for c in cpus})}
            variants, sessions = {}, []
            for cpu in cpus:
                np.random.seed(args.seed)
                ir, streams, _, _ = mnist_adam.train_ir(bs, 1e-3, popxl.float32)
                sess = popxl.Session(ir, "cpu", options=CompileOptions(
                    threads=threads, target_cpu=None if cpu == "host" else cpu))
                sess.__enter__()
                sessions.append(sess)
                feeds = itertools.cycle([dict(zip(streams, b)) for b in data])
                variants[cpu] = timed(lambda s=sess, f=feeds: s.run(next(f)), reps)
            for isa, w in workers.items():
                variants[f"torch {isa}"] = lambda w=w, n=reps: w.time(n)
            med = alternate(variants, rounds)
            for cpu in cpus:
                isa = TORCH_FOR[cpu]
                t.add(**{"target": cpu, "threads": threads, "batch": bs, "ours": 1 / med[cpu],
                         "torch ISA": f"{isa} ({workers[isa].info['capability']})",
                         "torch fused Adam": 1 / med[f"torch {isa}"], "ours / torch": med[f"torch {isa}"] / med[cpu],
                         "ours / ours host": med["host"] / med[cpu] if "host" in med else None})
                print(f"{cpu} threads {threads} batch {bs}: {t.rows[-1]}", flush=True)
            for w in workers.values():
                w.close()
            for sess in sessions:
                sess.__exit__(None, None, None)
    return t


def isa_pieces(args, cpus: list[str], rounds: int) -> Table:
    """Our step's time by piece (each piece compiled alone, as profile_ours) per target CPU, rounds
    alternating over all CPUs and pieces: which part of the step a narrower ISA slows."""
    from isa_rows import alternate

    rng = np.random.default_rng(0)
    t = Table("isa_pieces", "Our step by piece per target CPU: ms per call (each piece compiled alone; pieces "
              "as the details table, with the tutorial's float16 first moment), and the piece's time over the host build's",
              ["target", "threads", "batch"] + [f"{p} ms" for p in PIECES] + [f"{p} / host" for p in PIECES])
    for threads in map(int, args.threads.split(",")):
        for bs in map(int, args.batches.split(",")):
            feeds = {"image": rng.standard_normal((1, bs, 28, 28)).astype(np.float32),
                     "labels": rng.integers(0, 10, (1, bs)).astype(np.int32)}
            reps = 20 if bs <= 32 else 4
            variants, keep = {}, []
            for cpu in cpus:
                for piece in PIECES:
                    np.random.seed(0)
                    sess = popxl.Session(build_piece(bs, piece, popxl.float16), "cpu", options=CompileOptions(
                        threads=threads, target_cpu=None if cpu == "host" else cpu))
                    keep.append(sess)

                    def run(exe=sess._exe, dev=sess._dev, n=reps, feeds=feeds) -> float:
                        t0 = time.perf_counter()
                        for _ in range(n):
                            exe.run(dev, feeds, 1)
                        return (time.perf_counter() - t0) / n
                    variants[cpu, piece] = run
            med = alternate(variants, rounds)
            for cpu in cpus:
                t.add(**{"target": cpu, "threads": threads, "batch": bs,
                         **{f"{p} ms": med[cpu, p] * 1e3 for p in PIECES},
                         **{f"{p} / host": med[cpu, p] / med["host", p] if "host" in cpus else None
                            for p in PIECES}})
                print(f"pieces {cpu} threads {threads} batch {bs}: {t.rows[-1]}", flush=True)
    return t


def build_piece(bs: int, piece: str, m_dtype: popxl.dtype = popxl.float32):
    """A program with one piece of the training step: forward + loss; forward + backward (the gradients
    summed into one number so nothing is dropped); the eight Adam updates on gradient variables; the step.
    m_dtype: Adam's first moment (float32 as the main table's "ours" rows; the tutorial's is float16)."""
    from compiler import addons
    from compiler.popxl import ops

    if piece == "step":
        return mnist_adam.train_ir(bs, 1e-3, m_dtype)[0]
    ir = popxl.Ir(replication=1)
    with ir.main_graph:
        img = ops.host_load(popxl.h2d_stream((bs, 28, 28), popxl.float32, "image"))
        labels = ops.host_load(popxl.h2d_stream((bs,), popxl.int32, "labels"), "labels")
        facts, fwd = mnist_adam.Net().create_graph(img)
        if piece == "adam":
            variables = facts.init()
            grads = {v: popxl.variable(np.full(v.shape, 1e-3, np.float32), name=f"g.{k}")
                     for k, v in variables.named_tensors.items()}
            mnist_adam.optimiser_step(variables, grads, mnist_adam.Adam(cache=True), 1e-3, m_dtype)
            out = ops.sum(img)
        else:
            bwd = addons.autodiff(fwd) if piece == "forward+backward" else None
            variables = facts.init()
            info = fwd.bind(variables).call_with_info(img)
            out, dx = addons.ops.cross_entropy_with_grad(info.outputs[0], labels)
            if bwd is not None:
                binfo = bwd.call_with_info(dx, args=bwd.grad_graph_info.inputs_dict(info))
                grads = bwd.grad_graph_info.fwd_parent_ins_to_grad_parent_outs(info, binfo)
                for v in variables.tensors:
                    out = out + ops.sum(grads[v])
        ops.host_store(popxl.d2h_stream(out.shape, out.dtype, "out"), out)
    return ir


def profile_ours(bs: int, threads: int, reps: int) -> dict[str, float]:
    """Median ms per step of each piece of our training step, compiled on its own, executable called directly."""
    rng = np.random.default_rng(0)
    feeds = {"image": rng.standard_normal((1, bs, 28, 28)).astype(np.float32),
             "labels": rng.integers(0, 10, (1, bs)).astype(np.int32)}
    out = {}
    for piece in PIECES:
        np.random.seed(0)
        sess = popxl.Session(build_piece(bs, piece), "cpu", options=CompileOptions(threads=threads))
        out[piece] = round(_timed_ms(sess._exe, sess._dev, feeds, reps), 3)
    return out


def _timed_ms(exe, dev, feeds: dict, reps: int) -> float:
    """Median ms of one call of a compiled program's step (7 samples of `reps` calls, 3 warm-up calls)."""
    for _ in range(3):
        exe.run(dev, feeds, 1)
    samples = []
    for _ in range(7):
        t0 = time.perf_counter()
        for _ in range(reps):
            exe.run(dev, feeds, 1)
        samples.append((time.perf_counter() - t0) / reps * 1e3)
    return statistics.median(samples)


def step_matmuls(bs: int) -> list[tuple[tuple, tuple, bool, bool]]:
    """(a shape, b shape, transpose_a, transpose_b) of every matmul our step runs, in schedule order."""
    np.random.seed(0)
    ir = clone(mnist_adam.train_ir(bs, 1e-3, popxl.float32)[0].core)
    run_pipeline(ir, level=2, skip=EPILOGUE_PASSES)
    return [(op.inputs[0].shape, op.inputs[1].shape, bool(op.attrs.get("transpose_a")),
             bool(op.attrs.get("transpose_b"))) for g in ir.reachable_graphs() for op in g.ops if op.kind == "MatMul"]


def _matmul_alone(sa: tuple, sb: tuple, ta: bool, tb: bool):
    """A program computing op(a) @ op(b) into a variable (compiled at the default level, the copy is the
    matmul's epilogue: its tiles store the result there once, as a plain matmul stores its own)."""
    from compiler.popxl import ops
    from compiler.popxl.ops._emit import emit_op, out

    rng = np.random.default_rng(0)
    ir = popxl.Ir()
    with ir.main_graph:
        a = popxl.variable(rng.standard_normal(sa).astype(np.float32), name="a")
        b = popxl.variable(rng.standard_normal(sb).astype(np.float32), name="b")
        y = out(emit_op("MatMul", {"a": a, "b": b}, {"transpose_a": ta, "transpose_b": tb}))
        res = popxl.variable(np.zeros(y.shape, np.float32), name="y")
        ops.var_updates.copy_var_update_(res, y)
    return ir


def profile_matmuls(bs: int, threads: int, reps: int, table: "Table") -> None:
    """Where the step's time goes: each of its matmuls compiled alone (plus a copy of its result), their
    sum, and the whole step with the epilogue passes off and on, each timed the same way."""
    rng = np.random.default_rng(0)
    feeds = {"image": rng.standard_normal((1, bs, 28, 28)).astype(np.float32),
             "labels": rng.integers(0, 10, (1, bs)).astype(np.int32)}
    runs = {}
    # the A/A control: the fused step compiled a second time and timed as a variant of its own; its
    # distance from "epilogues on" is the noise floor of every ratio in this table
    for name, skip in (("step, epilogues off", EPILOGUE_PASSES), ("step, epilogues on", ()),
                       ("step, epilogues on (A/A copy)", ())):
        np.random.seed(0)
        sess = popxl.Session(build_piece(bs, "step"), "cpu", options=CompileOptions(threads=threads, skip=skip))
        runs[name] = partial(sess._exe.run, sess._dev, feeds, 1)
    steps = interleaved_ms(runs, rounds=21, reps=reps)  # the two steps alternate: their ratio is like for like
    total, flops_all = 0.0, 0
    shapes = step_matmuls(bs)
    for spec in dict.fromkeys(shapes):
        sa, sb, ta, tb = spec
        m, k = (sa[1], sa[0]) if ta else sa
        n = sb[0] if tb else sb[1]
        sess = popxl.Session(_matmul_alone(*spec), "cpu", options=CompileOptions(threads=threads))
        ms = _timed_ms(sess._exe, sess._dev, {}, reps)
        count = shapes.count(spec)
        total += ms * count
        flops_all += 2 * m * n * k * count
        table.add(**{"threads": threads, "batch": bs, "piece": f"matmul {m}x{k} @ {k}x{n}" + (" (a^T)" if ta else "")
                     + (" (b^T)" if tb else ""), "count": count, "ms": ms, "GFLOP/s": 2 * m * n * k / ms / 1e6,
                     "share of step (epilogues off) %": 100 * ms * count / steps["step, epilogues off"]})
    off = steps["step, epilogues off"]
    table.add(**{"threads": threads, "batch": bs, "piece": "all matmuls", "count": len(shapes), "ms": total,
                 "GFLOP/s": flops_all / total / 1e6, "share of step (epilogues off) %": 100 * total / off})
    np.random.seed(0)
    sess = popxl.Session(build_piece(bs, "adam"), "cpu", options=CompileOptions(threads=threads))
    adam = _timed_ms(sess._exe, sess._dev, feeds, reps)
    table.add(**{"threads": threads, "batch": bs, "piece": "the Adam updates alone", "count": 8, "ms": adam,
                 "share of step (epilogues off) %": 100 * adam / off})
    # what no fusion removes: the matmuls (same micro-kernels, same order: the results are bit-identical)
    # and the update's arithmetic over every weight; "ours / epilogues off" is at most 100 / this share
    table.add(**{"threads": threads, "batch": bs, "piece": "floor of a fused step: matmuls + Adam", "count": 1,
                 "ms": total + adam, "share of step (epilogues off) %": 100 * (total + adam) / off})
    for name, ms in steps.items():
        table.add(**{"threads": threads, "batch": bs, "piece": name, "count": 1, "ms": ms,
                     "GFLOP/s": flops_all / ms / 1e6, "share of step (epilogues off) %": 100 * ms / off})
    table.add(**{"threads": threads, "batch": bs, "piece": "step off - matmuls (all else)", "count": 1,
                 "ms": off - total, "share of step (epilogues off) %": 100 * (off - total) / off})


def profile_main(args) -> dict:
    mm_t = Table("matmuls", "Where our step's time goes: each matmul of the step compiled alone (with a copy of its "
                 "result into a variable), their sum, the whole step with the epilogue passes off and on (alternating rounds), "
                 "and the rest (ms per call, medians; GFLOP/s of the matmuls' 2 m n k)",
                 ["threads", "batch", "piece", "count", "ms", "GFLOP/s", "share of step (epilogues off) %"])
    for threads in map(int, args.threads.split(",")):
        for bs in map(int, args.batches.split(",")):
            profile_matmuls(bs, threads, 20 if bs <= 32 else 4, mm_t)
            print(f"threads {threads} batch {bs}: {mm_t.rows[-3:]}", flush=True)
    cmd = f"python benchmarks/mnist_train.py --profile --batches {args.batches} --threads {args.threads}"
    path = write_result("mnist_train_profile", [mm_t], command=cmd,
                        settings={"threads": args.threads, "batches": args.batches},
                        notes=["ours only (no torch in the process); each program compiled alone and called directly."]
                        + ([f"OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']} (at real-time priority on a loaded "
                            "machine, libgomp's default spin-then-sleep made the 2-thread batch-8 step ~3x slower "
                            "than on the quiet machine; spinning threads keep their CPUs)"]
                           if "OMP_WAIT_POLICY" in os.environ else []),
                        results_dir=args.results_dir)
    print(f"wrote {path}")
    return {"path": path, "rows": mm_t.rows}


def peak_temporaries(bs: int, skip: tuple[str, ...]) -> int:
    """The memory plan's peak bytes of the training step after the default pipeline (tools/report.py)."""
    np.random.seed(0)
    ir = clone(mnist_adam.train_ir(bs, 1e-3, popxl.float32)[0].core)
    run_pipeline(ir, level=2, skip=skip)
    return peak_bytes(ir)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=mnist_adam.DEFAULT_DATA)
    ap.add_argument("--batches", default="8,128")
    ap.add_argument("--limit-steps", type=int, default=None, help="train at most N steps per epoch run")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", default="1,2", help="thread counts for both ours and torch, one row each")
    ap.add_argument("--rounds", type=int, default=None, help="interleaved timing rounds (default 7)")
    ap.add_argument("--quick", action="store_true", help="300-step epochs, 3 short rounds")
    ap.add_argument("--no-compile", action="store_true", help="leave out torch.compile (its compile takes minutes)")
    ap.add_argument("--results-dir", default=None, help="where to write the result (default benchmarks/results)")
    ap.add_argument("--target-cpu", default=None, help="instead: rows per target CPU, e.g. host,haswell,x86-64-v2 "
                    "(torch restricted to the same ISA in its own process); writes mnist_train_isa")
    ap.add_argument("--profile", action="store_true", help="instead: where our step's time goes (each matmul "
                    "compiled alone, the step with the epilogue passes off and on; no torch in the process); "
                    "writes mnist_train_profile")
    args = ap.parse_args(argv)
    if args.profile:
        return profile_main(args)
    if args.target_cpu:
        cpus = args.target_cpu.split(",")
        rounds = args.rounds or (3 if args.quick else 7)
        path = write_result("mnist_train_isa", [isa_table(args, cpus, rounds), isa_pieces(args, cpus, rounds)],
                            command=f"python benchmarks/mnist_train.py --target-cpu {args.target_cpu} "
                                    f"--batches {args.batches} --threads {args.threads} --rounds {rounds}",
                            settings={"threads": args.threads, "batches": args.batches, "rounds": rounds,
                                      "pause_s": PAUSE_S},
                            notes=["torch restricted by ATEN_CPU_CAPABILITY=avx2, MKL_ENABLE_INSTRUCTIONS=AVX2, "
                                   "DNNL_MAX_CPU_ISA=AVX2 (x86-64-v2 rows: ATen default, MKL SSE4_2, oneDNN SSE41; "
                                   "host rows: torch's "
                                   "defaults); rounds alternate between "
                                   "our sessions and the torch processes; medians.",
                                   "pieces: forward + loss; forward + backward (gradients summed, no update); the "
                                   "eight Adam updates alone on gradient variables (standalone kernels, not fused "
                                   "into the weight-gradient matmuls as in the step); the whole step. Rounds "
                                   "alternate over every CPU and piece."],
                            results_dir=args.results_dir)
        print(f"wrote {path}")
        return {"path": path}
    import torch

    limit = args.limit_steps or (300 if args.quick else None)
    rounds = args.rounds or (3 if args.quick else 7)
    train, test = mnist_adam.load_data(args.data)
    mean, std = stats(train)
    cols = ["threads", "batch", "ours", "ours, epilogues off", "torch (same rule)", "torch.optim.Adam", "torch fused Adam",
            "torch.compile", "ours / epilogues off", "ours / torch.optim.Adam", "ours / torch fused", "ours / torch.compile",
            "ours fp16 m (tutorial)", "ours acc %", "torch acc %"]
    main_t = Table("main", "MNIST training, steps/s (paused protocol; fp32 Adam state on both sides)", cols,
                   notes=[f"accuracy: one epoch{f' of at most {limit} steps' if limit else ''}, same initial "
                          "weights and batch order; ours with fp32 first moment vs torch with the same rule.",
                          "ours fp16 m: the tutorial's float16 first moment (not like for like)."])
    b2b = Table("back_to_back", "MNIST training, steps/s timed back to back (no pause)",
                ["threads", "batch", "ours", "ours, epilogues off", "torch (same rule)", "torch fused Adam", "torch.compile",
                 "ours / epilogues off", "ours / torch fused"])
    extra = Table("details", "torch.compile first calls (s), peak temporaries (bytes, memory plan; epilogue passes "
                  "off / on) and our step's time by piece (ms, compiled alone)",
                  ["threads", "batch", "torch.compile first 3 steps s", "peak temporaries, epilogues off",
                   "peak temporaries, epilogues on"] + [f"{p} ms" for p in PIECES])
    for threads in map(int, args.threads.split(",")):
        torch.set_num_threads(threads)
        opts = CompileOptions(threads=threads)
        for bs in map(int, args.batches.split(",")):
            ours = mnist_adam.train(args.data, 1, bs, 1e-3, "cpu", args.seed, limit, quiet=True, options=opts,
                                    first_order_dtype=popxl.float32)
            tut = torch_epoch(train, test, mean, std, bs, 1e-3, args.seed, limit, "tutorial")
            # a round of 5 batch-128 steps after the paused protocol's sleep timed mostly the wake-up (the
            # OpenMP workers, caches): 387 steps/s against 545 in rounds of 20 (2 threads, same session)
            per_round = (50 if bs <= 32 else 20) if args.quick else (200 if bs <= 32 else 20)
            r = interleaved(train, mean, std, bs, 1e-3, args.seed, threads, rounds, per_round, not args.no_compile)
            p, b = r["paused"], r["back to back"]
            main_t.add(**{"threads": threads, "batch": bs, "ours": p["ours"], "ours, epilogues off": p["ours, epilogues off"],
                          "torch (same rule)": p["torch"],
                          "torch.optim.Adam": p["torch.optim.Adam"], "torch fused Adam": p["torch fused Adam"],
                          "torch.compile": p.get("torch.compile"),
                          "ours / epilogues off": p["ours"] / p["ours, epilogues off"],
                          "ours / torch.optim.Adam": p["ours"] / p["torch.optim.Adam"],
                          "ours / torch fused": p["ours"] / p["torch fused Adam"],
                          "ours / torch.compile": p["ours"] / p["torch.compile"] if "torch.compile" in p else None,
                          "ours fp16 m (tutorial)": p["ours fp16 m"],
                          "ours acc %": ours["test_accuracy"], "torch acc %": tut["test_accuracy"]})
            b2b.add(**{"threads": threads, "batch": bs, "ours": b["ours"], "ours, epilogues off": b["ours, epilogues off"],
                       "torch (same rule)": b["torch"],
                       "torch fused Adam": b["torch fused Adam"], "torch.compile": b.get("torch.compile"),
                       "ours / epilogues off": b["ours"] / b["ours, epilogues off"],
                       "ours / torch fused": b["ours"] / b["torch fused Adam"]})
            prof = profile_ours(bs, threads, 20 if bs <= 32 else 4)
            extra.add(**{"threads": threads, "batch": bs, "torch.compile first 3 steps s": r["compile_s"],
                         "peak temporaries, epilogues off": peak_temporaries(bs, EPILOGUE_PASSES),
                         "peak temporaries, epilogues on": peak_temporaries(bs, ()),
                         **{f"{k} ms": v for k, v in prof.items()}})
            print(f"threads {threads} batch {bs}: {main_t.rows[-1]}", flush=True)
    cmd = "python benchmarks/mnist_train.py" + (" --quick" if args.quick else "") + (
        f" --rounds {args.rounds}" if args.rounds else "") + (" --no-compile" if args.no_compile else "")
    path = write_result("mnist_train", [main_t, b2b, extra], command=cmd,
                        settings={"threads": args.threads, "batches": args.batches, "limit_steps": limit,
                                  "rounds": rounds, "pause_s": PAUSE_S},
                        notes=[f"{rounds} interleaved rounds of {'50 / 20' if args.quick else '200 / 20'} steps "
                               "(batch 8 / 128) per variant; "
                               "torch at its defaults apart from torch.set_num_threads(threads)."],
                        results_dir=args.results_dir)
    print(f"wrote {path}")
    return {"path": path, "rows": main_t.rows}


if __name__ == "__main__":
    main()
