"""RuleTable: the one registry helper every backend uses for its lowering rules.

A table maps an op kind (or, for the LLVM loop bodies, a scalar primitive) to the function that
lowers it. Besides its rules a table names the kinds the backend's graph walker lowers itself
(calls, host streams, multi-kernels) and the kinds it refuses, each with the reason its error
gives, so that the table alone answers "does this backend lower that kind?"
(tests/backends/test_coverage.py asks it for every op kind).

    RULES = RuleTable("ONNX", "compiler/backends/onnx/rules.py")

    @RULES.rule("MatMul")
    def _matmul(b, op, names): ...
"""
from __future__ import annotations

from typing import Callable, Generic, Hashable, Iterable, Iterator, TypeVar

K = TypeVar("K", bound=Hashable)
R = TypeVar("R", bound=Callable)


class RuleTable(Generic[K, R]):
    def __init__(self, backend: str, where: str, elementwise: bool = False) -> None:
        self.backend = backend
        self.where = where  # the file that holds the rules (named in errors: where to add one)
        self.elementwise = elementwise  # elementwise ops are lowered from their primitive expression
        self._rules: dict[K, R] = {}
        self.walked: set[K] = set()  # lowered by the backend's graph walker, not by a rule
        self.refused: dict[K, str] = {}  # kind -> why the backend cannot lower it

    def rule(self, *keys: K) -> Callable[[R], R]:
        """Decorator: `fn` lowers every kind in `keys`."""
        def deco(fn: R) -> R:
            for k in keys:
                if k in self._rules:
                    raise ValueError(f"{self.backend}: a second lowering rule for {k!r} ({self.where})")
                self._rules[k] = fn
            return fn
        return deco

    def __setitem__(self, key: K, fn: R) -> None:
        self._rules[key] = fn  # a plain assignment replaces (tests swap in a broken rule this way)

    def __delitem__(self, key: K) -> None:
        del self._rules[key]

    def walk(self, *keys: K) -> None:
        """Declare kinds the graph walker lowers itself."""
        self.walked.update(keys)

    def refuse(self, key: K, reason: str) -> None:
        self.refused[key] = reason

    def refuse_all(self, keys: Iterable[K], reason: str) -> None:
        for key in keys:
            self.refused[key] = reason

    def __getitem__(self, key: K) -> R:
        return self._rules[key]

    def __contains__(self, key: object) -> bool:
        return key in self._rules

    def __iter__(self) -> Iterator[K]:
        return iter(self._rules)

    def get(self, key: K, default: R | None = None) -> R | None:
        return self._rules.get(key, default)

    def lowers(self, key: K, elementwise: bool = False) -> bool:
        """Whether this backend lowers `key` (by a rule, its walker or, if elementwise, its expression)."""
        return key in self._rules or key in self.walked or (elementwise and self.elementwise)

    def missing(self, what: str, key: K) -> str:
        """The error text for a kind without a rule."""
        if key in self.refused:
            return f"the {self.backend} backend cannot lower {what}: {self.refused[key]}"
        return f"the {self.backend} backend has no lowering for {what}; add a rule in {self.where}"
