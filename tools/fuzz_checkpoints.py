"""Mutated checkpoints for `python -m tools.fuzz_files --checkpoints N` (in tools/, not tools/fuzz/: it reads
runtime.checkpoint, which the program generator's layer may not).

A real checkpoint (runtime/checkpoint.py) of variables with awkward names (`x` and `x.npy`, a dot, a
slash, unicode) and dtypes (bfloat16, float16, int8, bool, 0-d and empty arrays) is damaged: its JSON
manifest edited (the same edits as saved IRs), or the file's bytes flipped, cut or extended. Loading
it (what `Session.load_checkpoint` does) must raise CheckpointError or give exactly the saved arrays:
never a crash, another exception, or other data under a name.
"""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any, Callable

import ml_dtypes
import numpy as np

MANIFEST_MEMBER = "__manifest__.npy"


def base_arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(5)
    return {
        "x": rng.standard_normal((3, 4)).astype(np.float32),
        "x.npy": rng.standard_normal((3, 4)).astype(np.float32),  # .npz keys would swap these two by name
        "layer.0/w": rng.standard_normal(5).astype(ml_dtypes.bfloat16),
        "m\u00fc": rng.standard_normal((2, 2)).astype(np.float16),
        "step": np.asarray(7, np.int32),
        "mask": rng.random(6) < 0.5,
        "q": rng.integers(-128, 127, 4).astype(np.int8),
        "empty": np.zeros((0, 3), np.float64),
    }


def save_base(path: Path) -> tuple[Path, Path]:
    """The checkpoint and a JSON file of what loading it must give ({name: [shape, dtype]})."""
    from runtime.checkpoint import save

    arrays = base_arrays()
    p = save(path, arrays)
    spec = path.with_suffix(".expected.json")
    spec.write_text(json.dumps({n: [list(a.shape), str(a.dtype)] for n, a in arrays.items()}))
    return p, spec


def with_manifest(data: bytes, edit: Callable[[Any], Any]) -> bytes:
    """The archive `data` with its manifest replaced by `edit(manifest)` (written as JSON again)."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            body = src.read(info.filename)
            if info.filename == MANIFEST_MEMBER:
                manifest = json.loads(str(np.load(io.BytesIO(body))))
                buf = io.BytesIO()
                np.save(buf, np.asarray(json.dumps(edit(manifest))))
                body = buf.getvalue()
            dst.writestr(info, body)
    return out.getvalue()


def mutant(base: Path, target: Path, rng: np.random.Generator, mutate: Callable, mutate_bytes: Callable) -> None:
    data = base.read_bytes()
    if rng.integers(2):
        data = with_manifest(data, lambda m: _repeat(mutate, m, rng))
    else:
        data = mutate_bytes(data, rng)
    target.write_bytes(data)


def _repeat(mutate: Callable, doc: Any, rng: np.random.Generator) -> Any:
    for _ in range(int(rng.integers(1, 4))):
        doc = mutate(doc, rng)
    return doc


# run in the checking child (tools/fuzz_files.py CHILD): "refused", "loaded" (exactly the saved arrays), or why not
CHILD_CHECK = r'''
def check_ckpt(path, spec_path):
    import ml_dtypes
    from runtime.checkpoint import CheckpointError, load
    from tools.fuzz_checkpoints import base_arrays
    spec = json.load(open(spec_path))
    dt = lambda d: ml_dtypes.bfloat16 if d == "bfloat16" else np.dtype(d)
    try:
        got = load(path, {n: (tuple(s), dt(d)) for n, (s, d) in spec.items()})
    except CheckpointError:
        return "refused"
    want = base_arrays()
    for n, a in want.items():
        b = got[n]
        if a.shape != b.shape or a.dtype != b.dtype or a.tobytes() != b.tobytes():
            return "MISMATCH"
    return "loaded"
'''
