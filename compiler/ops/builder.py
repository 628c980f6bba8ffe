"""Building core IR by op kind: what front ends other than PopXL's user API (compiler/optim) use.

    b = Builder()                                            # a fresh core Ir
    p = b.main.external("param", (4,), DType.float32)        # a caller-owned buffer (no data)
    g = b.main.external("grad", (4,), DType.float32)
    copy_(p, p - 0.1 * g)                                    # p <- p - 0.1 g, in place

A `Handle` names one value; a read through it sees the newest version of the value's storage (an
in-place op makes the next SSA version of its input), as PopXL's tensors do. A host number next to
a handle becomes a constant of the handle's dtype. Every op is created by `compiler.ops.emit`, which
applies the kind's type rule: a wrongly typed op fails here, naming its inputs. The op and output
names follow PopXL's (`add` / `add_out`), so a program prints the same whichever way it was built.
"""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from compiler.ir import DType, Graph, Ir, Op, TensorSpec, Value, as_dtype

from .registry import OpError, emit


class Handle:
    """A value being built on (see the module docstring); arithmetic emits ops."""

    __array_ufunc__ = None  # numpy must hand `array * handle` to the reflected operator
    __slots__ = ("value", "gb")

    def __init__(self, value: Value, gb: "GraphBuilder") -> None:
        self.value = value
        self.gb = gb

    @property
    def spec(self) -> TensorSpec:
        return self.value.spec

    @property
    def shape(self) -> tuple[int, ...]:
        return self.value.shape

    @property
    def dtype(self) -> DType:
        return self.value.dtype

    @property
    def name(self) -> str:
        return self.value.name

    def astype(self, dtype: Any) -> "Handle":
        return cast(self, dtype)

    def __repr__(self) -> str:
        return f"Handle({self.name!r} {self.spec})"

    def __neg__(self) -> "Handle":
        return negate(self)

    def __add__(self, o: Any) -> "Handle":
        return add(self, o)

    def __radd__(self, o: Any) -> "Handle":
        return add(o, self)

    def __sub__(self, o: Any) -> "Handle":
        return sub(self, o)

    def __rsub__(self, o: Any) -> "Handle":
        return sub(o, self)

    def __mul__(self, o: Any) -> "Handle":
        return mul(self, o)

    def __rmul__(self, o: Any) -> "Handle":
        return mul(o, self)

    def __truediv__(self, o: Any) -> "Handle":
        return div(self, o)

    def __rtruediv__(self, o: Any) -> "Handle":
        return div(o, self)

    def __pow__(self, o: Any) -> "Handle":
        return pow(self, o)

    def __rpow__(self, o: Any) -> "Handle":
        return pow(o, self)

    def __matmul__(self, o: Any) -> "Handle":
        return matmul(self, self.gb.lift(o, self.dtype))

    def __rmatmul__(self, o: Any) -> "Handle":
        return matmul(self.gb.lift(o, self.dtype), self)

    def __gt__(self, o: Any) -> "Handle":
        return greater(self, o)

    def __lt__(self, o: Any) -> "Handle":
        return less(self, o)

    def __ge__(self, o: Any) -> "Handle":
        return self.gb.emit_out("GreaterOrEqual", "greater_equal", {"a": self, "b": self.gb.lift(o, self.dtype)},
                                out_name=None)

    def __le__(self, o: Any) -> "Handle":
        return self.gb.emit_out("LessOrEqual", "less_equal", {"a": self, "b": self.gb.lift(o, self.dtype)},
                                out_name=None)


def host_array(data: Any, dtype: DType, what: str) -> np.ndarray:
    """`data` as a C-ordered array of `dtype`; a value the conversion would change beyond rounding (an
    integer wrapping around, a finite number becoming infinite) is an error, not a silent change."""
    src = np.asarray(data)
    with np.errstate(all="ignore"):
        arr = np.array(src, dtype=dtype.numpy, order="C", copy=True)
    if src.size and src.dtype.kind in "biuf":
        wide = src.astype(np.float64) if src.dtype.kind == "f" else src
        if arr.dtype.kind in "iu":
            lo, hi = np.iinfo(arr.dtype).min, np.iinfo(arr.dtype).max
            bad = ~((wide >= lo) & (wide <= hi))
        else:
            bad = np.isfinite(wide) & ~np.isfinite(arr.astype(np.float64))
        if bad.any():
            x = src.reshape(-1)[int(np.argmax(bad.reshape(-1)))]
            raise ValueError(f"{what}: the value {x} does not fit {dtype.name}; pass data that fits, or build "
                             "the op in a wider dtype")
    return arr


class GraphBuilder:
    """Creates the values and ops of one graph; tracks each storage's newest version."""

    def __init__(self, ir: Ir, graph: Graph) -> None:
        self.ir = ir
        self.graph = graph
        self._latest: dict[int, Value] = {}  # storage -> its newest version
        self._names: set[str] = set()

    def unique_name(self, name: str) -> str:
        """`name`, or `name__t<k>` when the graph has it already (PopXL's rule)."""
        if name in self._names:
            name = f"{name}__t{self.ir._tensor_counter}"
            self.ir._tensor_counter += 1
        self._names.add(name)
        return name

    def resolve(self, v: Value) -> Value:
        return self._latest.get(v.storage, v)

    # ------------------------------------------------------------------ values
    def external(self, name: str, shape: Iterable[int], dtype: Any) -> Handle:
        """A caller-owned buffer of the main graph (Ir.add_external): bound to an array at every run."""
        if self.graph is not self.ir.main:
            raise ValueError(f"external({name!r}): caller-owned buffers belong to the main graph, not graph "
                             f"{self.graph.id!r}; pass the buffer to the subgraph as an input")
        spec = TensorSpec(tuple(int(s) for s in shape), as_dtype(dtype))
        return Handle(self.ir.add_external(spec, self.unique_name(name)), self)

    def input(self, name: str, spec: TensorSpec, by_ref: bool = False) -> Handle:
        """A graph input; `by_ref`: the graph's in-place writes reach the caller's buffer."""
        return Handle(self.graph.add_input(spec, self.unique_name(name), by_ref=by_ref), self)

    def constant(self, data: Any, dtype: Any, name: str = "t") -> Handle:
        dt = as_dtype(dtype)
        arr = host_array(data, dt, f"constant {name!r}")
        return Handle(self.ir.add_constant(self.graph, arr, self.unique_name(name)), self)

    def lift(self, x: Any, dtype: DType) -> Handle:
        """x itself if it is a handle, else a constant of `dtype` holding x."""
        return x if isinstance(x, Handle) else self.constant(x, dtype)

    # --------------------------------------------------------------------- ops
    def emit(self, kind: str, inputs: dict[str, Handle], attrs: dict[str, Any] | None = None, *, name: str = "",
             out_names: list[str] | None = None, called: Graph | None = None) -> Op:
        """Create an op of `kind` reading the newest versions of `inputs` (role -> handle, in order)."""
        for role, h in inputs.items():
            if not isinstance(h, Handle):
                raise TypeError(f"{kind}: input {role!r} must be a Handle, got {type(h).__name__}")
            if h.value.graph is not self.graph:
                raise ValueError(f"{kind}: {h.name!r} belongs to graph {h.value.graph.id or 'main'!r}, the op is "
                                 f"built in graph {self.graph.id or 'main'!r}; pass it in as a graph input")
        values = {r: self.resolve(h.value) for r, h in inputs.items()}
        names = [self.unique_name(n) for n in out_names] if out_names else None
        try:
            op = emit(self.graph, kind, values, attrs, name=name, out_names=names, called=called)
        except OpError as e:
            described = ", ".join(f"{r}={h.name!r} {h.spec}" for r, h in inputs.items())
            raise OpError(f"{e}\n  inputs: {described}") from None
        handles = tuple(h.value for h in inputs.values())
        if any(h is not v for h, v in zip(handles, op.inputs)):
            op.handles = handles  # what was passed, for print_schedule
        for v in op.results:
            if v.version > 0:
                self._latest[v.storage] = v
        return op

    def emit_out(self, kind: str, name: str, inputs: dict[str, Handle], attrs: dict[str, Any] | None = None,
                 out_name: str | None = "") -> Handle:
        """An op with one output, named `<name>_out` (None: the registry's default name)."""
        names = None if out_name is None else [out_name or f"{name}_out"]
        return Handle(self.emit(kind, inputs, attrs, name=name, out_names=names).outputs[0], self)

    def call(self, sub: "GraphBuilder", args: list[Handle]) -> list[Handle]:
        """Call graph `sub` with `args` (one per input, of its spec); by-reference inputs are written back."""
        g = sub.graph
        if len(args) != len(g.inputs):
            raise ValueError(f"call {g.id!r}: {len(args)} arguments for {len(g.inputs)} inputs")
        for i, (a, v) in enumerate(zip(args, g.inputs)):
            if a.spec != v.spec:
                raise ValueError(f"call {g.id!r}: input {i} ({v.name!r}) expects {v.spec}, got {a.name!r} {a.spec}")
        attrs = {"out_specs": tuple((o.shape, o.dtype) for o in g.outputs)}
        op = self.emit("Call", {f"in{i}": a for i, a in enumerate(args)}, attrs, name="call",
                       out_names=[o.name.split("/")[-1] for o in g.outputs], called=g)
        return [Handle(v, self) for v in op.outputs]

    def returns(self, *outs: Handle) -> None:
        """The graph's outputs: the newest versions of `outs`."""
        self.graph.outputs = [self.resolve(h.value) for h in outs]


class Builder:
    """A core Ir under construction: `main` builds its main graph, `subgraph` adds graphs to call."""

    def __init__(self, ir: Ir | None = None) -> None:
        self.ir = ir if ir is not None else Ir()
        self.main = GraphBuilder(self.ir, self.ir.main)

    def subgraph(self, name: str) -> GraphBuilder:
        """A new graph with a unique id derived from `name`."""
        return GraphBuilder(self.ir, self.ir.new_graph(self.ir.unique_graph_id(name)))


# ------------------------------------------------------------------ op helpers
def _unary(kind: str, name: str) -> Any:
    def f(x: Handle) -> Handle:
        return x.gb.emit_out(kind, name, {"x": x})
    f.__name__ = f.__qualname__ = name
    f.__doc__ = f"The {kind} op of x."
    return f


def _binary(kind: str, name: str) -> Any:
    def f(a: Any, b: Any) -> Handle:
        if not isinstance(a, Handle):
            a = b.gb.lift(a, b.dtype)
        b = a.gb.lift(b, a.dtype)
        return a.gb.emit_out(kind, name, {"a": a, "b": b})
    f.__name__ = f.__qualname__ = name
    f.__doc__ = f"The {kind} op of a and b; a host number becomes a constant of the other's dtype."
    return f


negate, sqrt, exp, log = _unary("Neg", "negate"), _unary("Sqrt", "sqrt"), _unary("Exp", "exp"), _unary("Log", "log")
tanh, abs, sign, floor = _unary("Tanh", "tanh"), _unary("Abs", "abs"), _unary("Sign", "sign"), _unary("Floor", "floor")
add, sub, mul, div = _binary("Add", "add"), _binary("Sub", "sub"), _binary("Mul", "mul"), _binary("Div", "div")
pow, maximum, minimum = _binary("Pow", "pow"), _binary("Max", "maximum"), _binary("Min", "minimum")
greater, less, equal = _binary("Greater", "greater"), _binary("Less", "less"), _binary("Equal", "equal")


def cast(x: Handle, dtype: Any) -> Handle:
    return x.gb.emit_out("Cast", "cast", {"x": x}, {"to": as_dtype(dtype)})


def where(cond: Handle, a: Any, b: Any) -> Handle:
    """cond ? a : b (a non-bool condition is cast to bool first)."""
    if cond.dtype != DType.bool:
        cond = cast(cond, DType.bool)
    if not isinstance(a, Handle):
        a = b.gb.lift(a, b.dtype)
    return a.gb.emit_out("Where", "where", {"cond": cond, "a": a, "b": a.gb.lift(b, a.dtype)})


def fma(a: Handle, b: Handle, c: Handle) -> Handle:
    """a*b + c, rounded once."""
    return a.gb.emit_out("Fma", "fma", {"a": a, "b": b, "c": c})


def matmul(a: Handle, b: Handle) -> Handle:
    return a.gb.emit_out("MatMul", "matmul", {"a": a, "b": b})


def reshape(x: Handle, shape: Iterable[int]) -> Handle:
    return x.gb.emit_out("Reshape", "reshape", {"x": x}, {"shape": tuple(int(s) for s in shape)})


REDUCTIONS = {"sum": "ReduceSum", "mean": "ReduceMean", "max": "ReduceMax", "min": "ReduceMin"}


def reduce(how: str, x: Handle, axis: int | Iterable[int] | None = None, keepdims: bool = False) -> Handle:
    """The reduction `how` (sum, mean, max, min) of x over `axis` (None: every axis)."""
    axes = None if axis is None else (int(axis),) if isinstance(axis, int) else tuple(int(a) for a in axis)
    return x.gb.emit_out(REDUCTIONS[how], how, {"x": x}, {"axes": axes, "keepdims": bool(keepdims)})


def copy_(t: Handle, x: Handle) -> Handle:
    """t <- x, in place on t's storage (CopyVarUpdate); returns t's new version."""
    return t.gb.emit_out("CopyVarUpdate", "copy_var_update", {"t": t, "X": x}, out_name=f"updated__{t.name}")
