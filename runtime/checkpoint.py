"""Checkpoints: every variable (weights, optimizer state, step counters) in one .npz file.

Format: a numpy .npz archive with one array per variable, keyed by the variable's name, plus
`__manifest__`, a JSON string: {"format": "optgraph-checkpoint", "version": 1, "variables":
[{"name", "shape", "dtype"}...]}. bfloat16 arrays are stored as their uint16 bit patterns.
Writes are atomic: a temporary file in the same folder is written, flushed and fsynced, then renamed
over the target and the folder fsynced, so a crash leaves either the old or the new checkpoint.
"""
from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np

FORMAT, VERSION = "optgraph-checkpoint", 1


class CheckpointError(ValueError):
    pass


def save(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> Path:
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_suffix(path.suffix + ".npz")
    manifest = {"format": FORMAT, "version": VERSION,
                "variables": [{"name": n, "shape": list(a.shape), "dtype": str(a.dtype)} for n, a in arrays.items()]}
    payload = {n: (a.view(np.uint16) if str(a.dtype) == "bfloat16" else a) for n, a in arrays.items()}
    payload["__manifest__"] = np.asarray(json.dumps(manifest))
    buf = io.BytesIO()
    np.savez(buf, **payload)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(buf.getbuffer())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
    return path


def load(path: str | os.PathLike, expected: dict[str, tuple[tuple[int, ...], np.dtype]]) -> dict[str, np.ndarray]:
    """Arrays by name, checked against `expected` {name: (shape, dtype)}; every mismatch is reported."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            manifest = json.loads(str(z["__manifest__"]))
            data = {k: z[k] for k in z.files if k != "__manifest__"}
    except (OSError, ValueError, KeyError) as e:
        raise CheckpointError(f"{path}: not a readable checkpoint ({e})") from None
    if manifest.get("format") != FORMAT or manifest.get("version", 0) > VERSION:
        raise CheckpointError(f"{path}: unknown checkpoint format {manifest.get('format')!r} "
                              f"version {manifest.get('version')!r}")
    problems = []
    out = {}
    for name, (shape, dtype) in expected.items():
        if name not in data:
            problems.append(f"missing variable {name!r}")
            continue
        a = data[name]
        if np.dtype(dtype).name == "bfloat16":
            a = a.view(dtype)
        if a.shape != tuple(shape) or a.dtype != dtype:
            problems.append(f"{name!r}: checkpoint has {a.dtype}{a.shape}, the program needs {np.dtype(dtype)}{tuple(shape)}")
        out[name] = a
    extra = sorted(set(data) - set(expected))
    if extra:
        problems.append(f"variables the program does not have: {extra}")
    if problems:
        raise CheckpointError(f"{path} does not match this program:\n  " + "\n  ".join(problems))
    return out
