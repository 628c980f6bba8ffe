"""The compile cache per kernel: programs that share kernels with an earlier one reuse their objects;
a kernel entry that was tampered with is reported and rebuilt; the key follows the backend's source.
Work is counted (kernels compiled / reused), never timed."""
from __future__ import annotations

import json
import shutil
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from compiler import popxl
from compiler.backends.llvm import backend
from compiler.driver import CompileOptions, lower
from runtime.cache import CacheWarning

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples"))
import deep_mlp  # noqa: E402

WIDTH, BATCH = 16, 4


def _ir(layers: int, lr: float = 1e-3):
    return deep_mlp.train_ir(layers, WIDTH, BATCH, learning_rate=lr)


def _losses(ir_and_streams, cache_dir, device: str = "cpu") -> list[float]:
    ir, streams, _, loss = ir_and_streams
    x, y = deep_mlp.batch(WIDTH, BATCH)
    opts = CompileOptions(device=device, cache_dir=str(cache_dir))
    with popxl.Session(ir, device, options=opts) as s:
        return [float(s.run(dict(zip(streams, [x, y])))[loss]) for _ in range(3)]


def _code(layers: int, cache_dir, lr: float = 1e-3):
    return lower(_ir(layers, lr)[0], "llvm", CompileOptions(cache_dir=str(cache_dir)))


def _kernel_entries(cache_dir) -> list[Path]:
    return sorted((Path(cache_dir) / "kernels").glob("*.json"))


def test_a_deeper_program_reuses_every_kernel(tmp_path):
    first = _code(2, tmp_path)
    assert first.compiled_kernels > 0 and first.reused_kernels == 0
    deeper = _code(4, tmp_path)  # two more identical layers: new calls, no new kernel
    assert not deeper.cache_hit
    assert deeper.compiled_kernels == 0 and deeper.reused_kernels == first.compiled_kernels
    again = _code(4, tmp_path)
    assert again.cache_hit and again.reused_kernels == first.compiled_kernels
    np.testing.assert_allclose(_losses(_ir(4), tmp_path), _losses(_ir(4), tmp_path, "interpreter"), rtol=1e-5)


def test_a_changed_baked_in_hyper_parameter_recompiles_only_its_kernels(tmp_path):
    first = _code(2, tmp_path, lr=1e-3)
    other = _code(2, tmp_path, lr=5e-3)  # the learning rate is a constant inside the Adam kernels
    assert 0 < other.compiled_kernels < first.compiled_kernels
    assert other.reused_kernels + other.compiled_kernels == first.compiled_kernels
    np.testing.assert_allclose(_losses(_ir(2, 5e-3), tmp_path), _losses(_ir(2, 5e-3), tmp_path, "interpreter"),
                               rtol=1e-5)


def _tamper_obj(obj: Path, meta: Path) -> None:
    data = bytearray(obj.read_bytes())
    data[len(data) // 2] ^= 0xFF
    obj.write_bytes(bytes(data))


def _tamper_truncate(obj: Path, meta: Path) -> None:
    obj.write_bytes(obj.read_bytes()[:64])


def _tamper_scratch(obj: Path, meta: Path) -> None:  # a manifest edited without its digest
    info = json.loads(meta.read_text())
    info["layout"]["scratch"] += 64
    meta.write_text(json.dumps(info))


def _tamper_symbol(obj: Path, meta: Path) -> None:  # digest recomputed, but it names another kernel
    from runtime.cache import digest

    info = json.loads(meta.read_text())
    info["layout"]["symbol"] = "optk_" + "0" * 40
    info["sha256"] = digest(obj.read_bytes(), info["layout"])
    meta.write_text(json.dumps(info))


def _tamper_json(obj: Path, meta: Path) -> None:
    meta.write_text("{not json")


@pytest.mark.parametrize("tamper", [_tamper_obj, _tamper_truncate, _tamper_scratch, _tamper_symbol, _tamper_json])
def test_a_tampered_kernel_entry_is_reported_and_rebuilt(tmp_path, tamper):
    expected = _losses(_ir(2), tmp_path)
    meta = _kernel_entries(tmp_path)[0]
    tamper(meta.with_suffix(".o"), meta)
    with pytest.warns(CacheWarning, match="rebuilding"):
        code = _code(2, tmp_path)  # the program entry names the kernel: it must not be used as it is
    assert not code.cache_hit and code.compiled_kernels == 1
    assert _losses(_ir(2), tmp_path) == expected
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)
        assert _code(2, tmp_path).cache_hit  # the rebuilt entry is good again


def test_a_missing_kernel_entry_is_an_ordinary_miss(tmp_path):
    first = _code(2, tmp_path)
    entries = _kernel_entries(tmp_path)
    entries[0].unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)
        code = _code(2, tmp_path)
    assert not code.cache_hit and code.compiled_kernels == 1
    assert code.reused_kernels == first.compiled_kernels - 1


def test_a_changed_backend_source_changes_every_key(tmp_path, monkeypatch):
    """A changed LLVM lowering must never be served kernels compiled by the old one."""
    here = Path(backend.__file__).resolve().parent
    copy = tmp_path / "llvm"
    shutil.copytree(here, copy, ignore=shutil.ignore_patterns("__pycache__"))
    before = backend.source_digest([copy])
    rules = copy / "rules.py"
    rules.write_text(rules.read_text() + "\n# a changed rule\n")
    assert backend.source_digest([copy]) != before
    # the backend's own folder is one of those code_version hashes
    seen: list[list[Path]] = []
    real = backend.source_digest
    monkeypatch.setattr(backend, "source_digest", lambda dirs, extra="": seen.append(dirs) or real(dirs, extra))
    backend.code_version.cache_clear()
    try:
        backend.code_version()
    finally:
        backend.code_version.cache_clear()
    assert here in seen[0] and Path(backend.__file__).resolve().parents[3] / "runtime" in seen[0]
    # and every kernel's symbol (its cache key) carries the code version
    first = _code(2, tmp_path / "cache")
    monkeypatch.setattr(backend, "code_version", lambda: "another compiler")
    other = _code(2, tmp_path / "cache")
    assert other.reused_kernels == 0 and other.compiled_kernels == first.compiled_kernels


def test_kernels_compile_alike_on_a_worker_and_in_line(tmp_path):
    ir = _ir(2)[0]
    a = lower(ir, "llvm", CompileOptions(use_cache=False, compile_workers=0))
    b = lower(ir, "llvm", CompileOptions(use_cache=False, compile_workers=2))
    assert a.obj == b.obj and a.kernels == b.kernels
