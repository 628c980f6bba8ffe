"""What each fuzz step builds, through the public popxl API only (one handler per step kind).

Every handler keeps values bounded (guards like |x|+1 before log/sqrt/div, power-of-two scaling,
which is exact, when a bound grows) so programs stay finite, and records each new value's
tolerance and bound in the builder's environment.
"""
from __future__ import annotations

import inspect
import math
from typing import Any, Callable

import numpy as np

from compiler import popxl
from compiler.ir import as_dtype
from compiler.popxl import ops

from .program import Builder, Entry, GraphInfo

VU = ops.var_updates
Handler = Callable[[Builder, dict, list[Entry], Any], None]
HANDLERS: dict[str, Handler] = {}


def handler(name: str) -> Callable[[Handler], Handler]:
    def deco(fn: Handler) -> Handler:
        HANDLERS[name] = fn
        return fn
    return deco


def _is_float(t: Any) -> bool:
    return t.dtype.is_float


def _rescale(t: Any, s: dict) -> Any:
    """Multiply by 2**-k (exact) or, for integers, clamp to [-64, 64] when the step asks for it."""
    k = s.get("scale", 0)
    if not k:
        return t
    if _is_float(t):
        return t * (2.0 ** -k)
    return ops.maximum(ops.minimum(t, 64), -64)


def _set(b: Builder, s: dict, t: Any, tol: float, bound: float) -> None:
    k = s.get("scale", 0)
    if k:
        bound = bound * 2.0 ** -k if _is_float(t) else min(bound, 64.0)
        t = _rescale(t, s)
    b.env[s["out"]] = Entry(t, tol, bound, "value")


def _like(x: Any, ref: Any) -> Any:
    return x if x.dtype == ref.dtype else ops.cast(x, ref.dtype)


# ---------------------------------------------------------------- creation
@handler("var")
def _var(b: Builder, s: dict, ins: list[Entry], fill: Any) -> None:
    rng = np.random.default_rng([b.ctx.seed, s["out"]])
    shape, dt = tuple(s["shape"]), as_dtype(s["dtype"]).numpy  # (np.dtype does not know bfloat16)
    init = s["init"]
    if init == "value":
        data = np.full(shape, s["value"])
    elif init == "zeros":
        data = np.zeros(shape)
    elif dt.kind in "iu":
        data = rng.integers(-5, 6, shape)
    else:
        data = rng.uniform(0 if init == "pos" else -1, 1, shape)
    t = popxl.variable(np.asarray(data).astype(dt), dt, name=f"v{s['out']}")
    role = s.get("role", "var")
    tol = 0.0 if s["exact"] else b.ctx.var_tol
    b.env[s["out"]] = Entry(t, tol, abs(float(s.get("value", 16.0))) if role == "hyper" else 16.0, role)


@handler("load")
def _load(b: Builder, s: dict, ins: list[Entry], fill: Any) -> None:
    name = f"in{s['out']}"
    h = popxl.h2d_stream(tuple(s["shape"]), s["dtype"], name=name)
    b.ctx.loads[name] = h
    b.env[s["out"]] = Entry(ops.host_load(h, name), 0.0, 5.0, "value")


@handler("observe")
def _observe(b: Builder, s: dict, ins: list[Entry], fill: Any) -> None:
    (e,) = ins
    if s["how"] == "store":
        name = f"out{s['in'][0]}_{len(b.ctx.tol)}"
        ops.host_store(popxl.d2h_stream(e.t.shape, e.t.dtype, name=name), e.t)
    else:
        o = popxl.variable(np.zeros(e.t.shape, e.t.dtype.numpy), e.t.dtype, name=f"obs{s['in'][0]}_{len(b.ctx.tol)}")
        VU.copy_var_update_(o, e.t)
        name = o.name
    b.ctx.tol[name] = e.tol


@handler("wild_cast")
def _wild_cast(b: Builder, s: dict, ins: list[Entry], fill: Any) -> None:
    """float -> int of values out of the integer range, infinite or NaN (one meaning on every device:
    saturate, NaN -> 0), stored straight to a host stream: nothing downstream sees the extreme values."""
    (a,) = ins
    to = popxl.dtypes.DType[s["to"]]
    # a factor float16 cannot hold (building refuses a constant that would become infinite): scale in float32
    x = ops.cast(a.t, popxl.float32) if a.t.dtype.name == "float16" and abs(s["c"]) > 6e4 else a.t
    t, tol = b.traced(lambda: ops.cast(x * float(s["c"]), to), a.tol)
    name = f"wild{s['out']}"
    ops.host_store(popxl.d2h_stream(t.shape, t.dtype, name=name), t)
    b.ctx.tol[name] = tol


# ---------------------------------------------------------- elementwise
UNARY: dict[str, tuple[Callable[[Any], Any], Callable[[float], float]]] = {
    "neg": (lambda t: -t, lambda m: m),
    "abs": (ops.abs, lambda m: m),
    "tanh": (ops.tanh, lambda m: 1.0),
    "sigmoid": (ops.sigmoid, lambda m: 1.0),
    "relu": (ops.relu, lambda m: m),
    "gelu": (ops.gelu, lambda m: m),
    "geluerf": (ops.geluerf, lambda m: m),
    "sqrt": (lambda t: ops.sqrt(ops.abs(t) + 1.0), lambda m: math.sqrt(m + 1)),
    "exp": (lambda t: ops.exp(ops.tanh(t)), lambda m: math.e),
    "log": (lambda t: ops.log(ops.abs(t) + 1.0), lambda m: math.log(m + 1)),
    "square": (lambda t: t * t, lambda m: m * m),
    "recip": (lambda t: 1.0 / (ops.abs(t) + 1.0), lambda m: 1.0),
    "clip": (lambda t: ops.clip(t, -0.5, 0.75), lambda m: 0.75),
    "identity": (ops.identity, lambda m: m),
    # discontinuous: the generator applies them to exact values only
    "sign": (ops.sign, lambda m: 1.0),
    "floor": (lambda t: ops.floor(t * 4.0), lambda m: 4 * m + 1),
}
INT_UNARY = ("neg", "abs", "square", "identity", "sign")
DISCONTINUOUS = ("sign", "floor")


@handler("unary")
def _unary(b: Builder, s: dict, ins: list[Entry], fill: Any) -> None:
    (a,) = ins
    fn, bound = UNARY[s["fn"]]
    t, tol = b.traced(lambda: fn(a.t), a.tol)
    _set(b, s, t, tol, bound(a.bound))


BINARY: dict[str, tuple[Callable[[Any, Any], Any], Callable[[float, float], float]]] = {
    "add": (lambda x, y: x + y, lambda p, q: p + q),
    "sub": (lambda x, y: x - y, lambda p, q: p + q),
    "mul": (lambda x, y: x * y, lambda p, q: p * q),
    "div": (lambda x, y: x / (ops.abs(y) + 1.0), lambda p, q: p),
    "max": (ops.maximum, max),
    "min": (ops.minimum, max),
    "pow": (lambda x, y: ops.pow(ops.abs(x) + 0.5, ops.tanh(y)), lambda p, q: max(p + 0.5, 2.0)),
}
INT_BINARY = ("add", "sub", "mul", "max", "min")


@handler("binary")
def _binary(b: Builder, s: dict, ins: list[Entry], fill: Any) -> None:
    x, y = ins
    fn, bound = BINARY[s["fn"]]
    t, tol = b.traced(lambda: fn(x.t, _like(y.t, x.t)), x.tol, y.tol)
    _set(b, s, t, tol, bound(x.bound, y.bound))


SCALAR: dict[str, Callable[[Any, float], Any]] = {
    "add": lambda t, c: t + c, "mul": lambda t, c: t * c, "rsub": lambda t, c: c - t, "div": lambda t, c: t / c,
}


@handler("scalar")
def _scalar(b: Builder, s: dict, ins: list[Entry], fill: Any) -> None:
    (a,) = ins
    c = s["c"] if _is_float(a.t) else int(s["c"])
    t, tol = b.traced(lambda: SCALAR[s["fn"]](a.t, c), a.tol)
    grow = {"add": a.bound + abs(c), "rsub": a.bound + abs(c), "mul": a.bound * abs(c)}
    _set(b, s, t, tol, grow.get(s["fn"], a.bound / max(abs(c), 1e-30)))


@handler("cast")
def _cast(b: Builder, s: dict, ins: list[Entry], fill: Any) -> None:
    (a,) = ins
    to = popxl.dtypes.DType[s["to"]]
    if _is_float(a.t) and not to.is_float:  # floor first, so the cast itself is well defined
        t, tol = b.traced(lambda: ops.cast(ops.floor(a.t * 4.0), to), a.tol)
        _set(b, s, t, tol, 4 * a.bound + 1)
        return
    t, tol = b.traced(lambda: ops.cast(a.t, to), a.tol)
    _set(b, s, t, tol, a.bound * 1.01)


CMP = {"greater": ops.greater, "less": ops.less, "equal": ops.equal}


@handler("where")
def _where(b: Builder, s: dict, ins: list[Entry], fill: Any) -> None:
    p, q, x, y = ins
    t, tol = b.traced(lambda: ops.where(CMP[s["cmp"]](p.t, _like(q.t, p.t)), x.t, _like(y.t, x.t)),
                        p.tol, q.tol, x.tol, y.tol)
    _set(b, s, t, tol, max(x.bound, y.bound))


# ---------------------------------------------------------- tensor ops
REDUCE = {"sum": ops.sum, "mean": ops.mean, "max": ops.max, "min": ops.min, "sumsquare": ops.sumsquare}


@handler("reduce")
def _reduce(b: Builder, s: dict, ins: list[Entry], fill: Any) -> None:
    (a,) = ins
    axes = s["axes"]
    t, tol = b.traced(lambda: REDUCE[s["fn"]](a.t, axis=axes, keepdims=s["keepdims"]), a.tol)
    n = int(np.prod([a.t.shape[i] for i in (axes if axes is not None else range(a.t.rank))]))
    bound = {"sum": n * a.bound, "sumsquare": n * a.bound ** 2}.get(s["fn"], a.bound)
    _set(b, s, t, tol, bound)


@handler("matmul")
def _matmul(b: Builder, s: dict, ins: list[Entry], fill: Any) -> None:
    x, y = ins
    yt = _like(y.t, x.t)
    swap = list(range(x.t.rank - 2)) + [x.t.rank - 1, x.t.rank - 2] if x.t.rank >= 2 else None
    form = s["form"]
    if form == "abT":
        fn, k = (lambda: x.t @ ops.transpose(yt, swap)), x.t.shape[-1]
    elif form == "aTb":
        fn, k = (lambda: ops.transpose(x.t, swap) @ yt), x.t.shape[-2]
    else:  # "vec": (..., m, k) @ (k,)
        fn, k = (lambda: ops.matmul(x.t, yt)), x.t.shape[-1]
    t, tol = b.traced(fn, x.tol, y.tol)
    _set(b, s, t, tol, k * x.bound * y.bound)


@handler("reshape")
def _reshape(b: Builder, s: dict, ins: list[Entry], fill: Any) -> None:
    (a,) = ins
    t, tol = b.traced(lambda: a.t.reshape(tuple(s["shape"])), a.tol)
    _set(b, s, t, tol, a.bound)


@handler("transpose")
def _transpose(b: Builder, s: dict, ins: list[Entry], fill: Any) -> None:
    (a,) = ins
    t, tol = b.traced(lambda: ops.transpose(a.t, tuple(s["perm"])), a.tol)
    _set(b, s, t, tol, a.bound)


@handler("softmax")
def _softmax(b: Builder, s: dict, ins: list[Entry], fill: Any) -> None:
    (a,) = ins
    t, tol = b.traced(lambda: ops.softmax(a.t, axis=s["axis"]), a.tol)
    _set(b, s, t, tol, 1.0)


# ---------------------------------------------------------- control flow
@handler("seq")
def _seq(b: Builder, s: dict, ins: list[Entry], fill: Any) -> None:
    with popxl.in_sequence(s["mode"]):
        if fill is not None:
            sub = Builder(b.ctx, b.env, b.depth, log=s["body"])
            fill(sub)
        else:
            for step in s["body"]:
                b.apply(step)


@handler("graph")
def _graph(b: Builder, s: dict, ins: list[Entry], fill: Any) -> None:
    decl = s["inputs"]
    info = GraphInfo(None, decl)
    params = [inspect.Parameter(f"a{i}", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                annotation=popxl.TensorByRef if d["by_ref"] else popxl.Tensor)
              for i, d in enumerate(decl)]

    def body(*args: Any) -> list[Any]:
        env = {d["id"]: Entry(t, d["tol"], d["bound"], "ref" if d["by_ref"] else "input")
               for d, t in zip(decl, args)}
        sub = Builder(b.ctx, env, b.depth + 1, log=s["body"] if fill is not None else None)
        if fill is not None:
            fill(sub)
        else:
            for step in s["body"]:
                sub.apply(step)
        present = [i for i in s["outputs"] if i in env]
        info.outputs = [(i, env[i].tol, env[i].bound) for i in present]
        info.ref_tol = {k: env[d["id"]].tol for k, d in enumerate(decl) if d["by_ref"]}
        return [env[i].t for i in present]

    body.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    body.__annotations__ = {p.name: p.annotation for p in params}
    body.__name__ = body.__qualname__ = f"g{s['id']}"
    info.graph = b.ctx.ir.create_graph(body, *[popxl.TensorSpec(tuple(d["shape"]), d["dtype"]) for d in decl])
    b.ctx.graphs[s["id"]] = info


@handler("call")
def _call(b: Builder, s: dict, ins: list[Entry], fill: Any) -> None:
    info = b.ctx.graphs[s["graph"]]
    outs = ops.call(info.graph, *[e.t for e in ins])
    # an argument less precise than the graph was traced for widens every inexact result
    worse = max([e.tol for e, d in zip(ins, info.inputs) if e.tol > d["tol"]], default=0.0)
    slot = {i: k for k, i in enumerate(s["body_outputs"])}
    for t, (i, tol, bound) in zip(outs, info.outputs):
        b.env[s["out"][slot[i]]] = Entry(t, max(tol, worse) if tol else 0.0, bound, "value")
    for k, tol in info.ref_tol.items():
        ins[k].tol = max(ins[k].tol, tol, worse if tol else 0.0)
        ins[k].updates += 1


from . import updates  # noqa: E402,F401  (registers the in-place update handlers)
from . import patterns  # noqa: E402,F401  (registers the pass-shaped handlers)
from . import gen_hostile  # noqa: E402,F401  (registers the hostile handlers)
