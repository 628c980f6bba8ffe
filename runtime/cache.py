"""On-disk cache of compiled objects, keyed by the optimised IR, the target and the project version.

An entry is `<key>.o` (the object file) plus `<key>.json` (the program layout and the object's
sha256). A missing, truncated or corrupt entry is detected by the hash check and rebuilt. Writes
go to a temporary file that is renamed into place, so concurrent compilers never see half an entry.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from .atomic import atomic_write

FORMAT = 1


def default_dir() -> Path:
    """~/.cache/optgraph; CompileOptions.cache_dir overrides it."""
    return Path(os.path.expanduser("~")) / ".cache" / "optgraph"


class CompileCache:
    def __init__(self, directory: str | os.PathLike | None = None) -> None:
        self.dir = Path(directory) if directory else default_dir()

    @staticmethod
    def key(*parts: Any) -> str:
        return hashlib.sha256(repr((FORMAT, *parts)).encode()).hexdigest()[:40]

    def load(self, key: str) -> tuple[bytes, dict] | None:
        obj, meta = self.dir / f"{key}.o", self.dir / f"{key}.json"
        try:
            info = json.loads(meta.read_text())
            data = obj.read_bytes()
        except (OSError, ValueError):
            return None
        if info.get("format") != FORMAT or hashlib.sha256(data).hexdigest() != info.get("sha256"):
            return None  # stale or corrupt: the caller rebuilds and overwrites it
        return data, info["layout"]

    def store(self, key: str, data: bytes, layout: dict) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        info = {"format": FORMAT, "sha256": hashlib.sha256(data).hexdigest(), "layout": layout}
        self._atomic_write(self.dir / f"{key}.o", data)
        self._atomic_write(self.dir / f"{key}.json", json.dumps(info).encode())

    def _atomic_write(self, path: Path, data: bytes) -> None:
        atomic_write(path, lambda f: f.write(data))
