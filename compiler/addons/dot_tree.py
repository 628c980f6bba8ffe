"""DotTree / NamedTensors: nested name -> leaf mappings with dotted keys (popxl.addons semantics)."""
from __future__ import annotations

from typing import Any, Generic, Iterable, TypeVar

L = TypeVar("L")


class DotTree(Generic[L]):
    def __init__(self) -> None:
        self._map: dict[str, Any] = {}  # key -> leaf or DotTree, insertion ordered

    # ------------------------------------------------------------ building
    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DotTree":
        t = cls()
        for k, v in d.items():
            t.insert(k, v)
        return t

    def insert(self, key: str, value: Any, overwrite: bool = False) -> None:
        head, _, rest = key.partition(".")
        if rest:
            sub = self._map.get(head)
            if sub is None:
                sub = self._map[head] = type(self)()
            if not isinstance(sub, DotTree):
                raise ValueError(f"key {key!r}: {head!r} is already a leaf")
            sub.insert(rest, value, overwrite)
            return
        if head in self._map and not overwrite:
            raise ValueError(f"key {key!r} already exists; pass overwrite=True to replace it")
        self._map[head] = value

    def update(self, other: "DotTree | dict[str, Any]") -> None:
        items = other.to_dict() if isinstance(other, DotTree) else other
        for k, v in items.items():
            self.insert(k, v, overwrite=True)

    # ------------------------------------------------------------- reading
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in self._map.items():
            if isinstance(v, DotTree):
                for k2, v2 in v.to_dict().items():
                    out[f"{k}.{k2}"] = v2
            else:
                out[k] = v
        return out

    def keys_flat(self) -> list[str]:
        return list(self.to_dict())

    def unpack(self) -> tuple[tuple[str, ...], tuple[Any, ...]]:
        items = sorted(self.to_dict().items())
        return tuple(k for k, _ in items), tuple(v for _, v in items)

    @classmethod
    def pack(cls, keys: Iterable[str], values: Iterable[Any]) -> "DotTree":
        return cls.from_dict(dict(zip(keys, values)))

    def to_mapping(self, other: "DotTree") -> dict[Any, Any]:
        mine, theirs = self.to_dict(), other.to_dict()
        return {v: theirs[k] for k, v in mine.items() if k in theirs}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._map[name]
        except KeyError:
            raise AttributeError(f"no key {name!r}; keys: {list(self._map)}") from None

    def get(self, key: str) -> Any:
        return self.to_dict()[key]

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def __contains__(self, key: str) -> bool:
        return key in self.to_dict()

    def __len__(self) -> int:
        return len(self.to_dict())

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
