"""The IDX loader: raw and gzip files, every malformed case named, seeded batches, training-set statistics."""
from __future__ import annotations

import gzip
import sys
from pathlib import Path

import numpy as np
import pytest

from compiler.data import IDXError, batches, load_mnist, read_idx, stats, write_idx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synthetic import write_synthetic  # noqa: E402


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
def test_round_trip(tmp_path, dtype, name):
    a = (np.arange(24) - 5).astype(dtype).reshape(2, 3, 4)
    write_idx(tmp_path / name, a)
    got = read_idx(tmp_path / name)
    assert got.dtype == np.dtype(dtype) and got.dtype.isnative
    np.testing.assert_array_equal(got, a)


def test_big_endian_on_disk(tmp_path):
    write_idx(tmp_path / "x", np.array([1, 256], np.int32))
    assert (tmp_path / "x").read_bytes() == bytes([0, 0, 0x0C, 1, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 1, 0])


@pytest.mark.parametrize("data,match", [
    (b"\x01\x02\x08\x01", "not an IDX file"),          # magic must start with two zero bytes
    (b"\x00\x00\x07\x01", "not an IDX file"),          # unknown type code
    (b"\x00\x00", "not an IDX file"),                  # too short for a magic number
    (b"\x00\x00\x08\x02\x00\x00\x00\x02", "truncated header"),
    (b"\x00\x00\x08\x01\x00\x00\x00\x05\x01\x02", "expected 5 data bytes for shape \\(5,\\), found 2"),
    (b"\x00\x00\x08\x01\x00\x00\x00\x01\x01\x02", "expected 1 data bytes"),  # trailing garbage
    (gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x01\x07", mtime=0)[:-6], "corrupt gzip"),
], ids=["bad-magic", "bad-type", "too-short", "truncated-header", "short-data", "trailing-garbage", "corrupt-gzip"])
def test_malformed_files_are_named(tmp_path, data, match):
    (tmp_path / "bad").write_bytes(data)
    with pytest.raises(IDXError, match=match) as e:
        read_idx(tmp_path / "bad")
    assert str(tmp_path / "bad") in str(e.value)


def test_load_mnist_reads_raw_and_gz_and_checks_pairs(tmp_path):
    write_synthetic(tmp_path, 50, 20)
    train, test = load_mnist(tmp_path, "train"), load_mnist(tmp_path, "test")
    assert train.images.shape == (50, 28, 28) and train.images.dtype == np.uint8 and len(test) == 20
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(19, np.uint8))
    with pytest.raises(IDXError, match="do not match"):
        load_mnist(tmp_path, "test")
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        load_mnist(tmp_path / "nowhere", "train")


def test_batches_are_seeded_normalised_and_complete(tmp_path):
    write_synthetic(tmp_path, 100, 10)
    ds = load_mnist(tmp_path, "train")
    mean, std = stats(ds)
    pixels = ds.images.astype(np.float64) / 255.0
    assert mean == pytest.approx(pixels.mean(), rel=1e-12) and std == pytest.approx(pixels.std(), rel=1e-9)
    b1 = [y for _, y in batches(ds, 8, mean, std, seed=1)]
    b2 = [y for _, y in batches(ds, 8, mean, std, seed=1)]
    b3 = [y for _, y in batches(ds, 8, mean, std, seed=2)]
    assert all(np.array_equal(p, q) for p, q in zip(b1, b2)) and not all(np.array_equal(p, q) for p, q in zip(b1, b3))
    assert len(b1) == 12  # 100 // 8, the last partial batch dropped
    assert sorted(np.concatenate(b1)) == sorted(ds.labels[np.random.default_rng(1).permutation(100)[:96]])
    assert len(list(batches(ds, 8, mean, std, drop_last=False))) == 13
    x, y = next(batches(ds, 8, mean, std, shuffle=False))
    assert x.dtype == np.float32 and y.dtype == np.int32 and x.shape == (8, 28, 28)
    np.testing.assert_allclose(x, (ds.images[:8] / 255.0 - mean) / std, rtol=1e-5, atol=1e-5)
    full = np.concatenate([b for b, _ in batches(ds, 10, mean, std, shuffle=False)])
    assert abs(full.mean()) < 1e-5 and full.std() == pytest.approx(1.0, rel=1e-5)
