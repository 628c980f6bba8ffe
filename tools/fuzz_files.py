"""A campaign of mutated saved IRs and compile-cache entries: nothing a file says may crash the process.

  python -m tools.fuzz_files [--irs N] [--cache N] [--checkpoints N] [--seed S]

Saved IRs: real programs (the examples plus generated ones, half of them hostile: bfloat16, casts of
out-of-range values) are saved, then mutated (1-3 random edits of the JSON: delete, retype, nudge a
number, duplicate / reverse / shorten a list, edit a string). Each mutant must either be refused by
`Ir.load` (IRFormatError) or load, compile and run on both devices with the same results; a file that
loads and then fails in the interpreter or while compiling is a LATE refusal (the error must come at
load, saying where), reported with the crashes and mismatches.
Cache entries: a real entry's manifest or object file is edited (JSON edits as above, or flipped, cut or
appended bytes); the next compile must warn and rebuild, or hit an entry that is
still exactly the one stored, and either way give the right results. Checkpoints: see
tools/fuzz_checkpoints.py (refused with CheckpointError, or exactly the saved arrays).

Every check runs in child processes, many per child; a child that dies is a crash, reported with the file
that killed it (kept under --out), and the campaign goes on in a fresh child. Exit status 1 on any crash
or mismatch.
"""
from __future__ import annotations

import argparse
import copy
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from tools import fuzz_checkpoints as checkpoints

ROOT = Path(__file__).resolve().parents[1]
ODD = [None, True, -1, 0, 7, 2 ** 40, 1.5, float("nan"), "x", "float32", [], {}, [2, 2], {"$tuple": [1]}]


def _nodes(x: Any, out: list) -> list:
    items = x.items() if isinstance(x, dict) else enumerate(x) if isinstance(x, list) else ()
    for k, v in items:
        out.append((x, k))
        _nodes(v, out)
    return out


def mutate(doc: Any, rng: np.random.Generator) -> Any:
    """One random structural change: delete, retype, nudge a number, duplicate/reverse a list, edit a string."""
    doc = copy.deepcopy(doc)
    nodes = _nodes(doc, [])
    if not nodes:
        return ODD[rng.integers(len(ODD))]
    parent, key = nodes[rng.integers(len(nodes))]
    v = parent[key]
    how = rng.integers(5)
    if how == 0:
        del parent[key]
    elif how == 1 or not isinstance(v, (int, list, str)) or isinstance(v, bool):
        parent[key] = ODD[rng.integers(len(ODD))]
    elif isinstance(v, int):
        parent[key] = v + int(rng.choice([-1, 1, -v - 1, 1000]))
    elif isinstance(v, list):
        parent[key] = (v + v[:1]) if how == 2 else v[::-1] if how == 3 else v[1:]
    else:
        parent[key] = v + "x" if how == 2 else ""
    return doc


def mutate_bytes(data: bytes, rng: np.random.Generator) -> bytes:
    if not data:
        return b"\0"
    how, k = rng.integers(3), int(rng.integers(len(data)))
    if how == 0:
        return data[:k] + bytes([data[k] ^ (1 << int(rng.integers(8)))]) + data[k + 1:]
    return data[:k] if how == 1 else data + bytes(rng.integers(0, 256, int(rng.integers(1, 64)), dtype=np.uint8))


CHILD = r'''
import json, sys, warnings
import ml_dtypes
import numpy as np
from compiler.ir import Ir
from compiler.ir.serialize import IRFormatError
from compiler.driver import CompileOptions, compile as compile_ir
from runtime.cache import CacheWarning

def run(ir, device, cache):
    exe = compile_ir(ir, CompileOptions(device=device, cache_dir=cache, use_cache=cache is not None))
    rng = np.random.default_rng(0)
    n = ir.replication_factor
    vs = [{k: np.array(a, copy=True) for k, a in ir.variables.items()} for _ in range(n)]
    st = [{name: rng.standard_normal((ir.num_host_transfers, *s.spec.shape)).astype(s.spec.dtype.numpy)
           for name, s in ir.streams.items() if s.direction == "h2d"} for _ in range(n)]
    if n == 1:
        outs = [exe.run(vs[0], st[0], ir.num_host_transfers)]
    else:  # a replicated program (replication_factor is a field a file may set): every replica's results
        outs = exe.run_replicas(vs, st, ir.num_host_transfers)
    return exe, {f"{r}:{k}": a for r in range(n) for k, a in [*(("var" + str(i), a) for i, a in vs[r].items()),
                                                               *outs[r].items()]}

def same(a, b):
    if set(a) != set(b):
        return False
    for k in a:
        x, y = np.asarray(a[k]), np.asarray(b[k])
        if x.shape != y.shape or x.dtype != y.dtype:
            return False
        if x.dtype.kind in "fV" or str(x.dtype) == "bfloat16":
            x, y = x.astype(np.float64), y.astype(np.float64)
            if not np.allclose(x, y, rtol=2e-2, atol=1e-3, equal_nan=True):
                return False
        elif not np.array_equal(x, y):
            return False
    return True

def check_ir(path, cache):
    try:
        ir = Ir.load(path)
    except IRFormatError:
        return "refused"
    try:
        _, ref = run(ir, "interpreter", None)
    except Exception as e:
        return f"interpreter raised {type(e).__name__}"
    try:
        _, got = run(ir, "cpu", cache)
    except Exception as e:
        return f"cpu raised {type(e).__name__}: {str(e)[:200]}"
    return "ran" if same(ref, got) else "MISMATCH"

def check_cache(ir_path, cache, want_path):
    ir = Ir.load(ir_path)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        exe, got = run(ir, "cpu", cache)
    warned = any(issubclass(x.category, CacheWarning) for x in w)
    want = dict(np.load(want_path))
    for k in want.pop("__bf16__", np.array([], str)).tolist():  # .npy has no bfloat16: kept as bits
        want[k] = want[k].view(ml_dtypes.bfloat16)
    ok = same({k: np.asarray(v) for k, v in got.items()}, want)
    return ("warned+rebuilt" if warned else "hit" if exe.cache_hit else "rebuilt") if ok else "MISMATCH"

CHECKPOINT_CHECK
for line in sys.stdin:
    kind, *args = json.loads(line)
    print("@@start", flush=True)
    try:
        r = {"ir": check_ir, "cache": check_cache, "ckpt": check_ckpt}[kind](*args)
    except Exception as e:
        r = f"ERROR {type(e).__name__}: {str(e)[:300]}"
    print("@@" + json.dumps(r), flush=True)
'''


CHILD = CHILD.replace("CHECKPOINT_CHECK", checkpoints.CHILD_CHECK)


def run_jobs(jobs: list[list], timeout: float = 3600) -> list[str]:
    """Outcome of each job; a child that dies marks its current job 'CRASH ...' and a new child goes on."""
    out: list[str] = []
    while len(out) < len(jobs):
        todo = jobs[len(out):]
        r = subprocess.run([sys.executable, "-c", CHILD], input="".join(json.dumps(j) + "\n" for j in todo),
                           capture_output=True, text=True, cwd=ROOT, timeout=timeout)
        started, done = 0, 0
        for line in r.stdout.splitlines():
            if line == "@@start":
                started += 1
            elif line.startswith("@@"):
                out.append(json.loads(line[2:]))
                done += 1
        if done < len(todo):  # the child died in the job it had started last
            if started == 0:
                raise RuntimeError(f"the checking child failed before any check ({r.returncode}):\n{r.stderr[-2000:]}")
            out.append(f"CRASH (exit status {r.returncode}): {r.stderr.strip()[-300:]}")
    return out


def base_programs(tmp: Path, count: int) -> list[Path]:
    sys.path.insert(0, str(ROOT / "examples"))
    import custom_optimiser

    from tools.fuzz import build, random_program

    irs = [custom_optimiser.build_ir()[0].core] + [build(random_program(s, size=6, hostile=s % 2 == 1)).ir.core
                                                   for s in range(count)]
    paths = []
    for k, ir in enumerate(irs):
        p = tmp / f"base{k}.json"
        ir.save(p)
        paths.append(p)
    return paths


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tools.fuzz_files", description=__doc__.splitlines()[0])
    ap.add_argument("--irs", type=int, default=1000, help="mutated saved IRs (default 1000)")
    ap.add_argument("--cache", type=int, default=200, help="mutated cache entries (default 200)")
    ap.add_argument("--checkpoints", type=int, default=0, help="mutated checkpoints (default 0)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bases", type=int, default=12, help="generated programs to mutate (plus the example)")
    ap.add_argument("--out", default="fuzz-files-failures", help="where failing files are kept")
    ap.add_argument("--batch", type=int, default=250, help="checks per child process")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="fuzz-files-"))
    bases = base_programs(tmp, args.bases)
    docs = [json.loads(p.read_text()) for p in bases]
    cache = str(tmp / "shared-cache")
    ir_jobs: list[list] = []
    for k in range(args.irs):
        d = docs[k % len(docs)]
        for _ in range(int(rng.integers(1, 4))):
            d = mutate(d, rng)
        p = tmp / f"ir{k}.json"
        p.write_text(json.dumps(d))
        ir_jobs.append(["ir", str(p), cache])
    ckpt, spec = checkpoints.save_base(tmp / "base-checkpoint")
    ckpt_jobs: list[list] = []
    for k in range(args.checkpoints):
        target = tmp / f"ckpt{k}.npz"
        checkpoints.mutant(ckpt, target, rng, mutate, mutate_bytes)
        ckpt_jobs.append(["ckpt", str(target), str(spec)])
    jobs: list[list] = []
    outcomes: list[str] = []
    total = args.irs + args.checkpoints + args.cache
    # the cheap checks first, so a campaign stopped early has their counts; cache entries compile each
    for phase in (lambda: ir_jobs, lambda: ckpt_jobs, lambda: _cache_jobs(tmp, bases, args.cache, rng)):
        more = phase()
        jobs += more
        for i in range(0, len(more), args.batch):
            outcomes += run_jobs(more[i:i + args.batch])
            print(f"... {len(outcomes)} / {total} checks, {time.perf_counter() - t0:.0f} s: "
                  f"{sum(o.startswith('CRASH') for o in outcomes)} crashes, {sum(o == 'MISMATCH' for o in outcomes)} "
                  f"mismatches, {sum(o.startswith('ERROR') for o in outcomes)} unexpected errors, "
                  f"{sum(map(_late, outcomes))} late refusals, {sum(o == 'refused' for o in outcomes)} refused at load",
                  flush=True)
    counts: dict[str, int] = {}
    bad = []
    for j, o in zip(jobs, outcomes):
        key = f"{j[0]}: {o.split(':')[0] if o.startswith(('cpu raised', 'interpreter raised', 'ERROR', 'CRASH')) else o}"
        counts[key] = counts.get(key, 0) + 1
        if o.startswith(("CRASH", "MISMATCH", "ERROR")) or _late(o):
            bad.append((j, o))
    for k in sorted(counts):
        print(f"  {counts[k]:6d}  {k}")
    if bad:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        for n, (j, o) in enumerate(bad):
            shutil.copy(j[1], out / f"{n}_{Path(j[1]).name}")
            print(f"{o}  <- {j}")
    print(f"{args.irs} mutated IR files, {args.cache} mutated cache entries and {args.checkpoints} mutated checkpoints in "
          f"{time.perf_counter() - t0:.0f} s: {sum(o.startswith('CRASH') for o in outcomes)} crashes, "
          f"{sum(o == 'MISMATCH' for o in outcomes)} mismatches, {sum(o.startswith('ERROR') for o in outcomes)} "
          f"unexpected errors, {sum(map(_late, outcomes))} late refusals")
    shutil.rmtree(tmp, ignore_errors=True)
    return 1 if bad else 0


def _cache_jobs(tmp: Path, bases: list[Path], n: int, rng: np.random.Generator) -> list[list]:
    """One clean cache entry per base program, copied and damaged per job (manifest or object file)."""
    clean = tmp / "clean-caches"
    wants = []
    for k, b in enumerate(bases if n else []):
        run_jobs([["ir", str(b), str(clean / str(k))]])
        np.savez(tmp / f"want{k}.npz", **_outputs(b, str(clean / str(k))))
        wants.append(tmp / f"want{k}.npz")
    jobs = []
    for k in range(n):
        b = k % len(bases)
        d = tmp / f"cache{k}"
        shutil.copytree(clean / str(b), d)
        entry = sorted(d.glob("*.json"))
        if entry:
            target = entry[0] if rng.integers(2) else entry[0].with_suffix(".o")
            data = target.read_bytes()
            if target.suffix == ".json" and rng.integers(2):
                try:
                    target.write_text(json.dumps(mutate(json.loads(data), rng)))
                except ValueError:
                    target.write_bytes(mutate_bytes(data, rng))
            else:
                target.write_bytes(mutate_bytes(data, rng))
        jobs.append(["cache", str(bases[b]), str(d), str(wants[b])])
    return jobs


def _late(outcome: str) -> bool:
    """A file Ir.load accepted that then failed to compile or run: its problem was found too late."""
    return outcome.startswith(("interpreter raised", "cpu raised"))


def _outputs(ir_path: Path, cache: str) -> dict[str, np.ndarray]:
    """What a clean cache entry's program computes (the reference for its damaged copies)."""
    code = CHILD.split("for line in sys.stdin")[0] + (
        f"ir = Ir.load({str(ir_path)!r})\n_, got = run(ir, 'interpreter', None)\n"
        "bf = [k for k, v in got.items() if str(np.asarray(v).dtype) == 'bfloat16']\n"
        "np.savez(sys.argv[1], __bf16__=np.array(bf, str), **{k: np.asarray(v).view(np.uint16) if k in bf "
        "else np.asarray(v) for k, v in got.items()})\n")
    with tempfile.TemporaryDirectory() as d:
        subprocess.run([sys.executable, "-c", code, f"{d}/o.npz"], check=True, cwd=ROOT, capture_output=True)
        return dict(np.load(f"{d}/o.npz"))


if __name__ == "__main__":
    sys.exit(main())
