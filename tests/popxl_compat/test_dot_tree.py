"""DotTree with popxl.addons semantics: kwargs, int keys (negative indexing), overwrite merging, filter_keys."""
from __future__ import annotations

import pytest

from compiler.addons import DotTree


def test_kwargs_and_int_keys():
    t = DotTree(a=1, b=DotTree(c=2))
    t.insert(0, "zero")
    t.insert(2, "two")
    assert t.b.c == 2 and t.get("b.c") == 2
    assert t[0] == t["0"] == "zero" and t[-1] == "two"
    with pytest.raises(KeyError):
        t[-2]
    with pytest.raises(ValueError):
        t.insert(-1, "x")
    with pytest.raises(ValueError):
        t.insert(".x", 1)


def test_insert_existing_key_needs_overwrite_and_merges():
    t = DotTree()
    t.insert("foo.bar.a", 1)
    with pytest.raises(ValueError, match="already exists"):
        t.insert("foo.bar.b", 2)
    t.insert("foo.bar.b", 2, overwrite=True)
    assert t.to_dict() == {"foo.bar.a": 1, "foo.bar.b": 2}


def test_filter_keys_and_clear():
    t = DotTree.from_dict({"foo.bar.a": 1, "foo.x": 2, "tee.0.h": 3})
    f = t.filter_keys(["foo.bar.a", "tee"])
    assert f.len() == 2 and f.foo.bar.a == 1 and f.tee[0].h == 3
    t._clear()
    assert t.foo and t.to_dict() == {}
