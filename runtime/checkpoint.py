"""Checkpoints: every variable of a program (weights, optimizer state, step counters) in one file.

Format (version 2): a numpy `.npz` archive (a zip of `.npy` files, readable with `np.load`) with one
array per variable, under the key `v<k>` (k: its position in the manifest), plus `__manifest__`, a 0-d
string array holding JSON:

    {"format": "optgraph-checkpoint", "version": 2,
     "variables": [{"name": "w", "key": "v0", "shape": [4, 8], "dtype": "float32"}, ...]}

Keys are not names because `.npz` cannot keep names apart that differ by a ".npy" suffix (`x` and
`x.npy` would swap). Version 1 files (keyed by name, no "key") are still read.

bfloat16 arrays are stored as their uint16 bit patterns (the manifest keeps the real dtype).

Writes are atomic: the archive is streamed into a temporary file in the target's folder, flushed
and fsynced, renamed over the target (atomic on POSIX), and the folder is fsynced, so a crash at
any point leaves either the previous checkpoint or the new one, never a mixture. A writer killed
mid-save may leave `<name>.<random>.tmp` beside the target; it is never read and safe to delete.

`load` checks the file against what the program expects (names, shapes, dtypes) and reports every
mismatch at once before returning anything.
"""
from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np

from .atomic import atomic_write

FORMAT, VERSION = "optgraph-checkpoint", 2
MANIFEST = "__manifest__"


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit the program; the message says which and why."""


def _npz_path(path: str | os.PathLike) -> Path:
    p = Path(path)
    return p if p.suffix == ".npz" else p.with_name(p.name + ".npz")


def save(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> Path:
    """Write `arrays` {variable name: array} atomically to `path` (".npz" is appended if missing)."""
    path = _npz_path(path)
    if MANIFEST in arrays:
        raise CheckpointError(f"a variable may not be called {MANIFEST!r}")
    manifest = {"format": FORMAT, "version": VERSION,
                "variables": [{"name": n, "key": f"v{k}", "shape": list(a.shape), "dtype": str(a.dtype)}
                              for k, (n, a) in enumerate(arrays.items())]}
    payload = {f"v{k}": (a.view(np.uint16) if str(a.dtype) == "bfloat16" else np.asarray(a))
               for k, a in enumerate(arrays.values())}
    payload[MANIFEST] = np.asarray(json.dumps(manifest))
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda f: np.savez(f, **payload), durable=True)
    return path


def read(path: str | os.PathLike) -> tuple[dict, dict[str, np.ndarray]]:
    """(manifest, arrays by name) of a checkpoint file, with the manifest checked against the arrays."""
    path = Path(path)
    if not path.exists() and _npz_path(path).exists():
        path = _npz_path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            if MANIFEST not in z.files:
                raise CheckpointError(f"{path}: not an optgraph checkpoint (no {MANIFEST})")
            manifest = json.loads(str(z[MANIFEST]))
            data = {k: z[k] for k in z.files if k != MANIFEST}
    except CheckpointError:
        raise
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zipfile.LargeZipFile) as e:
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(e).__name__}: {e})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an optgraph checkpoint (manifest format {manifest!r:.80})")
    if not isinstance(manifest.get("version"), int) or not 1 <= manifest["version"] <= VERSION:
        raise CheckpointError(f"{path}: checkpoint version {manifest.get('version')!r} is not one this "
                              f"compiler reads (1..{VERSION})")
    entries = manifest.get("variables")
    if not isinstance(entries, list):
        raise CheckpointError(f"{path}: the manifest's \"variables\" is {type(entries).__name__}, not a list: "
                              "the file is damaged")
    out: dict[str, np.ndarray] = {}
    used: set[str] = set()
    for k, entry in enumerate(entries):
        problem = _entry_problem(entry, manifest["version"])
        if problem:
            raise CheckpointError(f"{path}: manifest entry {k} {problem}: the file is damaged")
        name, dtype = entry["name"], entry["dtype"]
        key = entry.get("key", name)
        if name in out or key in used:
            raise CheckpointError(f"{path}: the manifest lists {name!r} (array {key!r}) twice: the file is damaged")
        if key not in data:
            raise CheckpointError(f"{path}: the manifest lists {name!r} but the archive has no array {key!r}")
        a = data[key]
        if dtype == "bfloat16":
            import ml_dtypes

            if a.dtype != np.uint16:
                raise CheckpointError(f"{path}: {name!r} is bfloat16 but stored as {a.dtype}: the file is damaged")
            a = a.view(ml_dtypes.bfloat16)
        if str(a.dtype) != dtype or list(a.shape) != entry["shape"]:
            raise CheckpointError(f"{path}: {name!r} is {a.dtype}{a.shape} but the manifest says "
                                  f"{dtype}{tuple(entry['shape'])}: the file is damaged")
        out[name] = a
        used.add(key)
    extra = sorted(set(data) - used)
    if extra:
        raise CheckpointError(f"{path}: arrays {extra} are not in the manifest: the file is damaged")
    return manifest, out


def _entry_problem(entry: object, version: int) -> str | None:
    if not isinstance(entry, dict):
        return f"is {type(entry).__name__}, not an object"
    if not isinstance(entry.get("name"), str) or not isinstance(entry.get("dtype"), str):
        return "needs a string \"name\" and \"dtype\""
    shape = entry.get("shape")
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        return f"has shape {shape!r}, not a list of non-negative integers"
    if version >= 2 and not isinstance(entry.get("key"), str):
        return "needs a string \"key\" (the array's name in the archive)"
    return None


def load(path: str | os.PathLike, expected: dict[str, tuple[tuple[int, ...], np.dtype]]) -> dict[str, np.ndarray]:
    """Arrays by name, checked against `expected` {name: (shape, dtype)}; every mismatch is reported."""
    _, data = read(path)
    problems = []
    for name, (shape, dtype) in expected.items():
        if name not in data:
            problems.append(f"missing variable {name!r} ({np.dtype(dtype)}{tuple(shape)})")
            continue
        a = data[name]
        if a.shape != tuple(shape) or a.dtype != dtype:
            problems.append(f"{name!r}: checkpoint has {a.dtype}{a.shape}, the program needs "
                            f"{np.dtype(dtype)}{tuple(shape)}")
    extra = sorted(set(data) - set(expected))
    if extra:
        problems.append(f"variables the program does not have: {extra}")
    if problems:
        raise CheckpointError(f"{path} does not match this program:\n  " + "\n  ".join(problems))
    return {name: data[name] for name in expected}
