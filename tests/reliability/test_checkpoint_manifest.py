"""Checkpoint names and manifests: names that differ only by ".npy" keep their own data; a manifest of
the wrong shape of JSON is a CheckpointError naming the file, never an AttributeError or TypeError."""
from __future__ import annotations

import json

import numpy as np
import pytest

from runtime.checkpoint import CheckpointError, read, save


def test_names_x_and_x_npy_do_not_swap(tmp_path):
    arrays = {"x": np.zeros(2, np.float32), "x.npy": np.ones(3, np.float32), "v0": np.full(1, 7.0)}
    _, got = read(save(tmp_path / "ck", arrays))
    assert list(got) == list(arrays)
    for n, a in arrays.items():
        assert got[n].dtype == a.dtype and np.array_equal(got[n], a), n


def test_version_1_files_are_still_read(tmp_path):
    manifest = {"format": "optgraph-checkpoint", "version": 1,
                "variables": [{"name": "w", "shape": [2], "dtype": "float32"}]}
    np.savez(tmp_path / "old.npz", w=np.arange(2, dtype=np.float32), __manifest__=np.asarray(json.dumps(manifest)))
    assert read(tmp_path / "old.npz")[1]["w"].tolist() == [0.0, 1.0]


V = {"format": "optgraph-checkpoint", "version": 2}
MANIFESTS = {
    "variables not a list": {**V, "variables": 5},
    "variables missing": V,
    "entry a string": {**V, "variables": ["w"]},
    "entry without name": {**V, "variables": [{"key": "v0", "shape": [2], "dtype": "float32"}]},
    "name a number": {**V, "variables": [{"name": 3, "key": "v0", "shape": [2], "dtype": "float32"}]},
    "shape null": {**V, "variables": [{"name": "w", "key": "v0", "shape": None, "dtype": "float32"}]},
    "shape of strings": {**V, "variables": [{"name": "w", "key": "v0", "shape": ["2"], "dtype": "float32"}]},
    "key missing": {**V, "variables": [{"name": "w", "shape": [2], "dtype": "float32"}]},
    "name twice": {**V, "variables": [{"name": "w", "key": "v0", "shape": [2], "dtype": "float32"}] * 2},
    "version a string": {**V, "version": "2", "variables": []},
    "manifest a list": [1, 2],
}


@pytest.mark.parametrize("case", list(MANIFESTS))
def test_a_wrong_typed_manifest_is_a_checkpointerror(case, tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, v0=np.zeros(2, np.float32), __manifest__=np.asarray(json.dumps(MANIFESTS[case])))
    with pytest.raises(CheckpointError, match="bad.npz"):
        read(path)
