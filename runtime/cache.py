"""On-disk cache of compiled objects, keyed by the optimised IR, the target and the project version.

An entry is `<key>.o` (the object file) plus `<key>.json` (the program layout and one sha256 over the
object AND the canonical layout). The runtime trusts the layout as much as the machine code (its
workspace size is how many bytes the code may write), so both are verified together: an entry whose
manifest is not the expected JSON object, or whose digest does not cover exactly this object and
layout, is reported with a `CacheWarning` and rebuilt; it never crashes and never blocks compiling.
A missing entry is an ordinary miss. Writes go to a temporary file that is renamed into place, so
concurrent compilers never see half an entry.

Kernels (compiler/backends/llvm/outline.py) have entries of their own in `kernels/`, keyed by their
signature: the object defining symbol `optk_<key>` and, as its manifest, the symbol and the scratch
bytes a call needs, verified together exactly like a program's. A program's manifest names the
kernels it links; a program entry is used only when each of them is there and intact.
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any

from .atomic import atomic_write

FORMAT = 3  # 2: the digest covers the layout too; 3: programs link kernels of their own entries
KERNEL_PREFIX = "optk_"  # a kernel's symbol is this prefix and its cache key


class CacheWarning(UserWarning):
    """A compile-cache entry was corrupt or stale and is being rebuilt."""


def default_dir() -> Path:
    """~/.cache/optgraph; CompileOptions.cache_dir overrides it."""
    return Path(os.path.expanduser("~")) / ".cache" / "optgraph"


def digest(data: bytes, layout: dict) -> str:
    """One sha256 over the object file and the canonical JSON of its layout."""
    h = hashlib.sha256(data)
    h.update(b"\0layout\0" + json.dumps(layout, sort_keys=True, separators=(",", ":")).encode())
    return h.hexdigest()


class CompileCache:
    def __init__(self, directory: str | os.PathLike | None = None) -> None:
        self.dir = Path(directory) if directory else default_dir()

    @staticmethod
    def key(*parts: Any) -> str:
        return hashlib.sha256(repr((FORMAT, *parts)).encode()).hexdigest()[:40]

    def load(self, key: str) -> tuple[bytes, dict] | None:
        """(object, layout) of a verified entry, or None (a miss, or a bad entry: warned about)."""
        obj, meta = self.dir / f"{key}.o", self.dir / f"{key}.json"
        try:
            text = meta.read_text()
            data = obj.read_bytes()
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            return self._bad(key, f"cannot be read ({type(e).__name__}: {e})")
        try:
            info = json.loads(text)
        except ValueError:
            return self._bad(key, "has a manifest that is not JSON")
        if not isinstance(info, dict) or not isinstance(info.get("layout"), dict):
            return self._bad(key, "has a manifest without a layout object")
        if info.get("format") != FORMAT:
            return None  # written by another cache format: an ordinary miss, overwritten on store
        if info.get("sha256") != digest(data, info["layout"]):
            return self._bad(key, "does not match its digest (object or manifest edited or truncated)")
        return data, info["layout"]

    def _bad(self, key: str, why: str) -> None:
        warnings.warn(f"compile cache entry {self.dir / key}.json {why}; rebuilding it", CacheWarning,
                      stacklevel=3)
        return None

    def kernels(self) -> "CompileCache":
        """The cache of single kernels (a directory of its own next to the programs)."""
        return CompileCache(self.dir / "kernels")

    def load_kernel(self, symbol: str) -> tuple[bytes, int] | None:
        """(object, scratch bytes) of kernel `symbol` (`optk_<key>`), or None (a miss, or a bad entry:
        warned about)."""
        key = symbol.removeprefix(KERNEL_PREFIX)
        hit = self.load(key)
        if hit is None:
            return None
        obj, info = hit
        scratch = info.get("scratch")
        if info.get("symbol") != symbol or not isinstance(scratch, int) or isinstance(scratch, bool) or scratch < 0:
            return self._bad(key, f"is not an entry for kernel {symbol} (manifest {info})")
        return obj, scratch

    def store_kernel(self, symbol: str, data: bytes, scratch: int) -> None:
        self.store(symbol.removeprefix(KERNEL_PREFIX), data, {"symbol": symbol, "scratch": scratch})

    def store(self, key: str, data: bytes, layout: dict) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        info = {"format": FORMAT, "sha256": digest(data, layout), "layout": layout}
        self._atomic_write(self.dir / f"{key}.o", data)
        self._atomic_write(self.dir / f"{key}.json", json.dumps(info).encode())

    def _atomic_write(self, path: Path, data: bytes) -> None:
        atomic_write(path, lambda f: f.write(data))
