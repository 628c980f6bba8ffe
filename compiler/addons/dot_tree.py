"""DotTree / NamedTensors: nested name -> leaf mappings with dotted keys (popxl.addons semantics).

Keys are strings; an int key is stored as its decimal string, and `tree[-1]` counts back from the
largest numeric key. Inserting under a key that exists raises unless `overwrite=True`, which merges
nested trees. `unpack()` sorts by key; `to_dict()` keeps insertion order.
"""
from __future__ import annotations

from typing import Any, Callable, Generic, Iterable, TypeVar

L = TypeVar("L")


def _check_key(key: str) -> None:
    if not (key.isnumeric() or key.isidentifier()):
        raise ValueError(f"DotTree key {key!r} is not a valid Python identifier or a non-negative integer")


class DotTree(Generic[L]):
    def __init__(self, **kwargs: Any) -> None:
        self._map: dict[str, Any] = {}  # key -> leaf or DotTree, insertion ordered
        for k, v in kwargs.items():
            self.insert(k, v)

    # ------------------------------------------------------------ building
    @classmethod
    def from_dict(cls, d: dict[Any, Any]) -> "DotTree":
        """Dotted keys create nested trees; keys under an existing subtree are added to it."""
        t = cls()
        for flat, v in d.items():
            *heads, last = str(flat).split(".")
            node = t
            for h in heads:
                if h not in node._map:
                    node.insert(h, cls())
                node = node._map[h]
            node.insert(last, v)
        return t

    def insert(self, key: str | int, value: Any, overwrite: bool = False) -> None:
        """Insert `value` at (dotted) `key`; an existing key raises unless overwrite=True (nested trees
        are then merged)."""
        if isinstance(key, int):
            if key < 0:
                raise ValueError(f"DotTree: a numeric key cannot be negative, got {key}")
            key = str(key)
        head, *rest = key.split(".")
        _check_key(head)
        if head in self._map and not overwrite:
            raise ValueError(f"DotTree: key {head!r} already exists; pass overwrite=True to replace or merge")
        if not rest:
            self._map[head] = value
            return
        cur = self._map.get(head)
        sub = cur.copy() if isinstance(cur, type(self)) else type(self)()
        sub.insert(".".join(rest), value, overwrite)  # on failure self is left unchanged
        self._map[head] = sub

    def update(self, other: "DotTree | dict[str, Any]", overwrite: bool = False) -> None:
        items = other.copy()._map if isinstance(other, DotTree) else other
        for k, v in items.items():
            self.insert(k, v, overwrite=overwrite)

    def copy(self) -> "DotTree":
        t = type(self)()
        for k, v in self._map.items():
            t._map[k] = v.copy() if isinstance(v, DotTree) else v
        return t

    def pop(self, key: str) -> Any:
        head, *rest = str(key).split(".")
        return self.get(head).pop(".".join(rest)) if rest else self._map.pop(head)

    def filter_keys(self, keys: Iterable[str | int]) -> "DotTree":
        """A new tree with only the given (dotted) keys."""
        keys = list(keys)
        if len(keys) != len(set(keys)):
            raise ValueError("filter_keys: `keys` cannot contain duplicates")
        t = type(self)()
        for k in keys:
            t.insert(k, self.get(k), overwrite=True)
        return t

    def map(self, fn: Callable[[Any], Any]) -> "DotTree":
        return type(self).from_dict({k: fn(v) for k, v in self.to_dict().items()})

    def _clear(self) -> None:
        """Remove every leaf, keeping the (now empty) nested trees."""
        for k, v in list(self._map.items()):
            if isinstance(v, DotTree):
                v._clear()
            else:
                del self._map[k]

    # ------------------------------------------------------------- reading
    def get(self, key: str | int) -> Any:
        """The value at (dotted) `key`. Numeric keys may be ints; negative ones count back from the
        largest numeric key."""
        if isinstance(key, int) or key.isnumeric() or (key.startswith("-") and key[1:].isnumeric()):
            k = int(key)
            if k < 0:
                nums = [int(x) for x in self._map if x.isnumeric()]
                k = (max(nums) + 1 + k) if nums else k
            if k < 0 or str(k) not in self._map:
                raise KeyError(f"DotTree: numeric key {key} does not exist; keys: {list(self._map)}")
            return self._map[str(k)]
        head, *rest = key.split(".")
        if head not in self._map:
            raise KeyError(f"DotTree: key {head!r} does not exist; keys: {list(self._map)}")
        v = self._map[head]
        if not rest:
            return v
        if not isinstance(v, DotTree):
            raise KeyError(f"DotTree: {head!r} is a leaf, it has no sub-key {'.'.join(rest)!r}")
        return v.get(".".join(rest))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self.get(name)
        except KeyError:
            raise AttributeError(f"no key {name!r}; keys: {list(self._map)}") from None

    def __getitem__(self, key: str | int) -> Any:
        return self.get(key)

    def __contains__(self, key: str | int) -> bool:
        try:
            self.get(key)
        except KeyError:
            return False
        return True

    def keys(self) -> list[str]:
        return list(self._map)

    def values(self) -> list[Any]:
        return list(self._map.values())

    def len(self) -> int:
        return len(self._map)

    def len_flat(self) -> int:
        return len(self.to_dict())

    def keys_flat(self) -> list[str]:
        return list(self.to_dict())

    def values_flat(self) -> list[Any]:
        return list(self.to_dict().values())

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in self._map.items():
            if isinstance(v, DotTree):
                for k2, v2 in v.to_dict().items():
                    out[f"{k}.{k2}"] = v2
            else:
                out[k] = v
        return out

    def unpack(self) -> tuple[tuple[str, ...], tuple[Any, ...]]:
        items = sorted(self.to_dict().items(), key=lambda kv: kv[0])
        return tuple(k for k, _ in items), tuple(v for _, v in items)

    @classmethod
    def pack(cls, keys: Iterable[str], values: Iterable[Any]) -> "DotTree":
        return cls.from_dict(dict(zip(keys, values)))

    def to_mapping(self, other: "DotTree") -> dict[Any, Any]:
        mine, theirs = self.to_dict(), other.to_dict()
        return {v: theirs[k] for k, v in mine.items() if k in theirs}

    def __len__(self) -> int:
        return len(self.to_dict())

    def __bool__(self) -> bool:  # a tree is a container object, truthy even when empty (as popxl.addons)
        return True

    def __iter__(self):
        return iter(self.to_dict())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.to_dict()!r})"


class NamedTensors(DotTree):
    @property
    def named_tensors(self) -> dict[str, Any]:
        return self.to_dict()

    @property
    def tensors(self) -> tuple[Any, ...]:
        return tuple(sorted(self.to_dict().values(), key=lambda t: t.name))
