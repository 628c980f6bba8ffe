"""The one registry of op kinds.

An `OpDef` holds everything the compiler knows about an op kind: its type rule,
its in-place effects (by input role), its semantics and its gradient rule.
Elementwise ops give `decompose` (an `Expr` of primitives) and get their numpy
reference, LLVM loop, Poplar expression and ONNX nodes from it; other ops give a
numpy `reference` and have lowering rules in each backend.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from compiler.ir import Graph, Op, TensorSpec, Value
from compiler.ir.serialize import register_op_check

from .primitives import Expr, evaluate


class OpError(ValueError):
    """A user error in building an op: says what, where, and what to do."""


# (specs by role, attrs) -> visible output specs
InferFn = Callable[[dict[str, TensorSpec], dict[str, Any]], list[TensorSpec]]
# (expr, nodes by role, specs by role, attrs) -> node ids for op.results order
DecomposeFn = Callable[[Expr, dict[str, int], dict[str, TensorSpec], dict[str, Any]], list[int]]
# (arrays by role, attrs, op) -> arrays in op.results order
ReferenceFn = Callable[[dict[str, np.ndarray], dict[str, Any], Op], list[np.ndarray]]


@dataclass
class OpDef:
    kind: str
    formula: str
    infer: InferFn
    modifies: tuple[str, ...] = ()  # roles written in place
    aliases: dict[int, str] = field(default_factory=dict)  # output index -> role it is the new version of
    decompose: DecomposeFn | None = None
    reference: ReferenceFn | None = None
    grad: Callable | None = None  # see compiler/autodiff
    # elementwise ops broadcast their inputs numpy-style to the output shape
    elementwise: bool = False
    # pure ops can be removed when unused, CSE'd, constant-folded
    pure: bool = True


OPS: dict[str, OpDef] = {}


def register(opdef: OpDef) -> OpDef:
    if opdef.kind in OPS:
        raise ValueError(f"op kind {opdef.kind!r} registered twice")
    OPS[opdef.kind] = opdef
    return opdef


def get(kind: str) -> OpDef:
    try:
        return OPS[kind]
    except KeyError:
        raise KeyError(f"unknown op kind {kind!r}; registered kinds: {', '.join(sorted(OPS))}") from None


def user_source() -> str | None:
    """file:line of the first stack frame outside this project's library code."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # compiler/
    fr = sys._getframe(2)  # (inspect.stack() reads every frame's source: most of the build time)
    while fr is not None:
        f = os.path.abspath(fr.f_code.co_filename)
        if not f.startswith(here) and "importlib" not in f:
            return f"{fr.f_code.co_filename}:{fr.f_lineno}"
        fr = fr.f_back
    return None


def emit(
    graph: Graph,
    kind: str,
    inputs: dict[str, Value],
    attrs: dict[str, Any] | None = None,
    *,
    name: str = "",
    out_names: list[str] | None = None,
    called: Graph | None = None,
    append: bool = True,
) -> Op:
    """Type-check and create an op in `graph`. `inputs` maps role -> value, in input order."""
    d = get(kind)
    attrs = dict(attrs or {})
    specs = {r: v.spec for r, v in inputs.items()}
    try:
        out_specs = d.infer(specs, attrs)
    except OpError as e:
        src = user_source()
        raise OpError(f"{e}{f' (at {src})' if src else ''}") from None
    roles = tuple(inputs)
    modifies = tuple(roles.index(r) for r in d.modifies if r in roles)
    aliases = {o: roles.index(r) for o, r in d.aliases.items() if r in roles}
    if kind == "Call" and called is not None:
        modifies = tuple(sorted(called.by_ref))
    for i in modifies:
        v = list(inputs.values())[i]
        if v.kind == "constant":
            src = user_source()
            raise OpError(f"{kind}: {v.name!r} {v.spec} is a constant, and {kind} would write it in place "
                          f"(input {roles[i]!r}); constants never change: use a variable (popxl.variable) "
                          f"for state that is updated{f' (at {src})' if src else ''}")
    return graph.make_op(
        kind, list(inputs.values()), out_specs, roles=roles, attrs=attrs, modifies=modifies,
        aliases=aliases, called=called, name=name, out_names=out_names, source=user_source(),
        append=append,
    )


def expr_for(op: Op) -> Expr:
    """The primitive expression of an elementwise op; inputs are numbered by position."""
    d = get(op.kind)
    if d.decompose is None:
        raise TypeError(f"{op.kind} is not elementwise; it has no primitive decomposition")
    e = Expr()
    nodes = {r: e.input(i, v.dtype) for i, (r, v) in enumerate(zip(op.roles, op.inputs))}
    specs = {r: v.spec for r, v in zip(op.roles, op.inputs)}
    e.outputs = list(d.decompose(e, nodes, specs, op.attrs))
    return e


def run_reference(op: Op, arrays: list[np.ndarray]) -> list[np.ndarray]:
    """Numpy semantics of one op: arrays in, arrays out in `op.results` order."""
    d = get(op.kind)
    if d.reference is not None:
        return d.reference(dict(zip(op.roles, arrays)), op.attrs, op)
    outs = evaluate(expr_for(op), arrays)
    shapes = [v.shape for v in op.results]
    return [np.broadcast_to(o, s).copy() if o.shape != s else o for o, s in zip(outs, shapes)]


def check_loaded_op(op: Op) -> str | None:
    """What is wrong with an op read from a saved file, or None: its kind must be registered and its type
    rule must give its outputs' types from its inputs and attrs (Ir.load runs this on every op)."""
    d = OPS.get(op.kind)
    if d is None:
        return f"unknown op kind {op.kind!r}; registered kinds: {', '.join(sorted(OPS))}"
    try:
        want = list(d.infer({r: v.spec for r, v in zip(op.roles, op.inputs)}, op.attrs))
    except Exception as e:  # a type rule meeting roles or attrs it does not know
        return f"the {op.kind} type rule rejects inputs {list(op.roles)} ({type(e).__name__}: {e})"
    if d.decompose is not None:
        try:  # what every backend asks of an elementwise op: its attrs must be the ones the rule reads
            expr_for(op)
        except Exception as e:
            return f"the {op.kind} definition cannot read its attrs {sorted(op.attrs)} ({type(e).__name__}: {e})"
    got = [v.spec for v in op.outputs]
    if op.kind not in ("Call", "FusedKernel", "MultiKernel", "MatMulEpilogue"):  # those carry their own effects
        roles = list(op.roles)
        mods = tuple(sorted(roles.index(r) for r in d.modifies if r in roles))
        als = {o: roles.index(r) for o, r in d.aliases.items() if r in roles}
        # the kind's own writes must be declared (else an update is lost); the in-placing pass may add
        # writes to elementwise ops, each the visible output of the same type
        extra = [i for i in op.modifies if i not in mods]
        if not set(mods) <= set(op.modifies) or any(op.aliases.get(o) != i for o, i in als.items()) or (
                extra and not d.elementwise) or any(
                not any(j == i and op.outputs[o].spec == op.inputs[i].spec for o, j in op.aliases.items()
                        if o < len(op.outputs)) for i in extra):
            return (f"modifies inputs {sorted(op.modifies)} with aliases {op.aliases}, but a {op.kind} "
                    f"modifies {list(mods)} with aliases {als} (in-placed elementwise ops may add writes "
                    "into inputs of their output's type)")
    if got != want:
        return (f"outputs are {', '.join(map(str, got)) or 'none'} but the {op.kind} type rule gives "
                f"{', '.join(map(str, want)) or 'none'}")
    return None


register_op_check(check_loaded_op)
