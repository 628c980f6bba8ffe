"""Frontend context: the current Ir and graph stack, name scopes, and in_sequence bookkeeping."""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterator, Union

from compiler.ir import Op

if TYPE_CHECKING:
    from .graph import Graph
    from .ir import Ir

InSeq = Union[bool, str, None]
_SENTINEL = -1


class _State(threading.local):
    """Per-thread building state, so threads can build programs independently."""

    def __init__(self) -> None:
        self.graph_stack: list["Graph"] = []
        self.name_scopes: list[str] = []
        self.in_sequence: list[InSeq] = [None]


_state = _State()


def gcg() -> "Graph":
    """The current graph (the innermost `with graph:`)."""
    if not _state.graph_stack:
        raise RuntimeError(
            "no current graph: build ops inside `with ir.main_graph:` or inside a function passed to "
            "ir.create_graph(...)")
    return _state.graph_stack[-1]


def gir() -> "Ir":
    return gcg().ir


def gmg() -> "Graph":
    """The main graph of the current Ir (whatever graph is being built)."""
    return gcg().ir.main_graph


get_current_graph = gcg
get_main_graph = gmg
get_ir = gir


def push_graph(g: "Graph") -> None:
    if _state.graph_stack and _state.graph_stack[-1].ir is not g.ir:
        raise RuntimeError(
            f"cannot enter graph {g.name!r} of another Ir while building graph {_state.graph_stack[-1].name!r}: "
            "graphs of different Irs cannot be nested. Leave the first Ir's `with` block first.")
    _state.graph_stack.append(g)


def pop_graph() -> None:
    _state.graph_stack.pop()


def scoped_name(name: str) -> str:
    return "/".join([*_state.name_scopes, name]) if _state.name_scopes else name


@contextmanager
def name_scope(name: str) -> Iterator[None]:
    _state.name_scopes.append(name)
    try:
        yield
    finally:
        _state.name_scopes.pop()


@contextmanager
def in_sequence(mode: InSeq = True) -> Iterator[None]:
    """Order ops in creation order (True), as one unordered block (False), or leave them ('pass').

    Works as a context manager and, like PopXL's, as a decorator.
    """
    if mode is None:
        raise TypeError("`None` cannot be passed to in_sequence(); use True, False or 'pass'")
    if mode not in (True, False, "pass"):
        raise TypeError(f"in_sequence mode must be True, False or 'pass', got {mode!r}")
    _state.in_sequence.append(None if mode == "pass" else bool(mode))
    try:
        yield
    finally:
        _state.in_sequence.pop()
        if _state.in_sequence[-1] is None:
            for g in list(_state.graph_stack):
                g._previous_ops.clear()
        if mode is False:
            for g in list(_state.graph_stack):
                g._close_unordered_block()


@contextmanager
def _execution_context(execution_context: object) -> Iterator[None]:
    """PopXL's execution-context switch. Everything here runs in the one normal context, so this only
    accepts the argument (PopXL uses it for its own transforms)."""
    yield


def current_in_sequence() -> bool | None:
    return _state.in_sequence[-1]  # type: ignore[return-value]


def on_op_created(g: "Graph", op: Op) -> None:
    """PopXL's `_add_in_sequence_topocons`, per graph."""
    mode = current_in_sequence()
    prev = g._previous_ops
    if mode is True:
        for p in prev:
            if p is not _SENTINEL:
                g._g.constraints.append((p, op))
        prev[:] = [op]
    elif mode is False:
        if prev and prev[0] is not _SENTINEL:
            g._g.constraints.append((prev[0], op))
        elif not prev:
            prev.append(_SENTINEL)
        prev.append(op)
        g._note_unordered(op)
