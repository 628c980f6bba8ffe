"""A numpy model of the Poplar / PopLibs calls the emitter writes, to run emitted code without an IPU.

Tensors are numpy arrays (views stay views, so in-place writes through reshape views land in their
variable); a Sequence is a list of closures run when the program runs, as Poplar defers execution to
engine.run(). popops::expr trees are evaluated node by node in each node's own dtype, and binary
operands must have equal types (popops does not promote), so a missing Cast in emitted code fails here.
This models semantics only: IPU rounding of transcendental functions and summation order are not
modelled (numpy's are used, the same the reference interpreter uses).
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Callable

import numpy as np

from cppparse import parse_statement, split_statements

TYPES = {"FLOAT": np.float32, "HALF": np.float16, "INT": np.int32, "UNSIGNED_INT": np.uint32, "SHORT": np.int16,
         "UNSIGNED_SHORT": np.uint16, "SIGNED_CHAR": np.int8, "UNSIGNED_CHAR": np.uint8, "BOOL": np.bool_,
         "LONGLONG": np.int64}
HOST = {"float": np.float32, "std::uint16_t": np.uint16, "int": np.int32, "unsigned": np.uint32, "short": np.int16,
        "unsigned short": np.uint16, "signed char": np.int8, "unsigned char": np.uint8, "long long": np.int64}
_erf = np.frompyfunc(math.erf, 1, 1)


class Seq(list):
    """A program::Sequence: closures run in order."""

    def run(self) -> None:
        for step in self:
            step()


class Stream:
    def __init__(self, name: str, dtype: Any, n: int, h2d: bool) -> None:
        self.name, self.dtype, self.n, self.h2d = name, np.dtype(dtype), n, h2d
        self.data: list[np.ndarray] = []  # h2d: batches to send; d2h: batches received


# ---------------------------------------------------------------- popops::expr
def _literal(text: str) -> Any:
    if text.startswith("0x"):
        return int(text, 16)
    if text.endswith("LL"):
        return np.int64(int(text[:-2]))
    if text.endswith("u"):
        return np.uint32(int(text[:-1]))
    if text.endswith("f"):
        return np.float32(float(text[:-1]))
    if re.fullmatch(r"\d+", text):
        return np.int32(int(text))
    raise ValueError(f"bare double literal {text!r}: emitted constants must be typed")


_UN = {"Neg": np.negative, "Sqrt": np.sqrt, "Exp": np.exp, "Log": np.log, "Tanh": np.tanh, "Abs": np.abs,
       "Sin": np.sin, "Cos": np.cos,
       "Signum": np.sign, "Floor": np.floor}
_BIN = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Max": np.maximum, "Min": np.minimum, "Pow": np.power}
_CMP = {"Lt": np.less, "Lte": np.less_equal, "Gt": np.greater, "Gte": np.greater_equal, "Equal": np.equal,
        "NotEqual": np.not_equal}


def eval_pe(e: Any, ts: list[np.ndarray]) -> np.ndarray:
    """Evaluate a parsed popops::expr tree over placeholder tensors `ts`."""
    kind = e[0]
    if kind == "name" and re.fullmatch(r"pe::_\d+", e[1]):
        return np.asarray(ts[int(e[1][5:]) - 1])
    assert kind == "call", f"not a popops::expr: {e}"
    head, args = e[1][1], e[3]
    if head == "pe::Const":
        a = args[0]
        if a[0] == "num":
            return np.asarray(_literal(a[1]))
        if a[0] == "name" and a[1] in ("true", "false"):
            return np.asarray(a[1] == "true")
        if a[0] == "neg":
            return -np.asarray(_literal(a[1][1]))
        if a[0] == "call" and a[1][0] == "scope":  # std::numeric_limits<float>::infinity() / quiet_NaN()
            return np.asarray(np.float32(np.inf if a[1][2] == "infinity" else np.nan))
        raise ValueError(f"unsupported constant {a}")
    if head == "pe::ConstHalf":
        a = args[0]
        v = -_literal(a[1][1]) if a[0] == "neg" else _literal(a[1])
        assert isinstance(v, np.float32), f"ConstHalf takes a float: {a}"
        return np.asarray(np.float16(v))
    if head == "pe::Cast":
        return eval_pe(args[0], ts).astype(TYPES[args[1][1]])
    vals = [eval_pe(a, ts) for a in args]
    name = head[4:]
    with np.errstate(all="ignore"):
        if name in _UN:
            return np.asarray(_UN[name](vals[0]))
        if name == "Erf":
            x = vals[0]
            return np.asarray(_erf(x.astype(np.float64)), np.float64).astype(x.dtype)
        if name == "Select":
            a, b, c = vals
            assert c.dtype == np.bool_ and a.dtype == b.dtype, f"Select({a.dtype}, {b.dtype}, {c.dtype})"
            return np.where(c, a, b)
        a, b = vals
        assert a.dtype == b.dtype, f"pe::{name} of {a.dtype} and {b.dtype}: popops does not promote types"
        if name in _CMP:
            return _CMP[name](a, b)
        if name == "Divide":
            if a.dtype.kind == "f":
                return np.asarray(np.divide(a, b))
            assert not np.any(b == 0), "integer division by zero reached popops"
            return np.asarray(np.trunc(a / b)).astype(a.dtype)
        return np.asarray(_BIN[name](a, b)).astype(a.dtype)


# ---------------------------------------------------------------- the machine
class Machine:
    """Evaluates statements of emitted build functions; `run` executes a Sequence."""

    def __init__(self, data: dict[str, bytes] | None = None) -> None:
        self.data = data or {}
        self.state: dict[str, np.ndarray] = {}
        self.streams: dict[str, Stream] = {}
        self.calls: dict[str, Callable[..., Any]] = {}

    # -- expressions
    def ev(self, e: Any, env: dict[str, Any]) -> Any:
        k = e[0]
        if k == "num":
            return _literal(e[1]) if not e[1].startswith("0x") else int(e[1], 16)
        if k == "str":
            return e[1]
        if k == "sizeof":
            return np.dtype(HOST.get(e[1], np.uint8)).itemsize
        if k == "neg":
            return -self.ev(e[1], env)
        if k == "brace":
            return [self.ev(x, env) for x in e[1]]
        if k == "name":
            n = e[1]
            if n in env:
                return env[n]
            if n in TYPES:
                return np.dtype(TYPES[n])
            if n.startswith(("popops::Operation::", "popnn::NonLinearityType::")):
                return n.rsplit("::", 1)[1]
            if n in ("true", "false"):
                return n == "true"
            raise NameError(f"unknown name {n!r}")
        if k == "index":
            return self.ev(e[1], env)[int(self.ev(e[2], env))]
        if k == "member":
            return self.ev(e[1], env)[e[2]]
        if k == "ctor":
            assert e[1] == "Subgraph"
            fn, ins, outs, refs = (self.ev(x, env) for x in e[2])
            return {"fn": fn, "inputs": ins, "outputs": outs, "byRef": refs}
        if k == "method":
            obj = self.ev(e[1], env)
            args = [self.ev(a, env) for a in e[3]]
            return self.method(obj, e[2], args)
        if k == "call":
            head = e[1][1] if e[1][0] == "name" else None
            if head is not None and head.startswith("pe::"):
                return ("pe", e)  # kept as a tree; popops::map evaluates it at run time
            args = [self.ev(a, env) for a in e[3]]
            return self.call(head, e[2], args, env)
        raise ValueError(f"cannot evaluate {e}")

    def method(self, obj: Any, name: str, args: list[Any]) -> Any:
        if name == "reshape":
            return obj.reshape(tuple(args[0]))
        if name == "dimShuffle":
            return np.transpose(obj, tuple(args[0]))
        if name == "flatten":
            return obj.reshape(-1)
        if name == "transpose":
            return obj.T
        if name == "add":
            obj.append(args[0])
            return None
        if name in ("clone",):
            return np.empty_like(args[0])
        if name == "addFunction":
            return args[0]
        if name in ("addHostToDeviceFIFO", "addDeviceToHostFIFO"):
            s = Stream(args[0], args[1], int(args[2]), name == "addHostToDeviceFIFO")
            self.streams[s.name] = s
            return s
        raise ValueError(f"unknown method {name}")

    def call(self, head: str | None, targs: str | None, a: list[Any], env: dict[str, Any]) -> Any:
        if head in self.calls:
            return self.calls[head](*a)
        if head == "addLinear":
            dt = a[1]
            return np.full(tuple(a[2]), np.nan, dt) if dt.kind == "f" else np.zeros(tuple(a[2]), dt)
        if head in ("initialised", "initialisedHalf", "initialisedBool"):
            assert head != "initialised" or targs in HOST, f"{head}<{targs}>"
            host = {"initialisedHalf": np.uint16, "initialisedBool": np.uint8}.get(head) or HOST[targs]
            vals = np.asarray(a[3], dtype=host) if not isinstance(a[3], np.ndarray) else a[3].astype(host)
            arr = vals.view(np.float16) if head == "initialisedHalf" else vals
            return np.array(arr.astype(a[1]).reshape(tuple(a[2])))
        if head == "std::vector":
            return np.full(int(a[0]), a[1], HOST[targs])
        if head == "loadRaw":
            return np.frombuffer(self.data[a[1]], dtype=np.dtype(HOST[targs]).newbyteorder("<"), count=int(a[2]))
        if head == "readBack":
            self.state[a[3]] = a[2]
            return None
        if head == "broadcastTo":
            return np.broadcast_to(a[0], tuple(a[1]))
        if head == "matMulOptions":
            return None
        if head == "Copy":
            src, dst = a[0], a[1]
            return lambda: self.copy(src, dst)
        if head == "Call":
            fn = a[0]
            return lambda: fn.run()
        return self.poplibs(head, a)

    def copy(self, src: Any, dst: Any) -> None:
        if isinstance(src, Stream):
            np.copyto(dst, src.data.pop(0).reshape(dst.shape))
        elif isinstance(dst, Stream):
            dst.data.append(np.array(src, copy=True).reshape(-1))
        else:
            assert src.shape == dst.shape, f"Copy of {src.shape} into {dst.shape}"
            np.copyto(dst, src)

    def poplibs(self, head: str | None, a: list[Any]) -> Any:
        seq: Seq
        if head == "popops::map":
            (_, e), ts, seq = a[1], a[2], a[3]
            shape = np.broadcast_shapes(*(t.shape for t in ts))
            out = np.empty(shape, eval_pe(e, [np.ones((), t.dtype) for t in ts]).dtype)
            seq.append(lambda: np.copyto(out, np.broadcast_to(eval_pe(e, ts), shape)))
            return out
        if head == "popops::mapInPlace":
            (_, e), ts, seq = a[1], a[2], a[3]
            seq.append(lambda: self._write(ts[0], eval_pe(e, ts)))
            return None
        if head == "popops::mapWithOutput":
            (_, e), ts, out, seq = a[1], a[2], a[3], a[4]
            seq.append(lambda: self._write(out, eval_pe(e, ts)))
            return None
        if head == "popops::reduce":
            x, dt, dims, op, seq = a[1], a[2], tuple(a[3]), a[4], a[5]
            out = np.empty(tuple(d for i, d in enumerate(x.shape) if i not in dims), dt)
            fn = {"ADD": np.sum, "MAX": np.max, "MIN": np.min,
                  "SQUARE_ADD": lambda v, axis: np.sum(v * v, axis=axis)}[op]
            seq.append(lambda: np.copyto(out, np.asarray(fn(x.astype(dt), axis=dims)).astype(dt)))
            return out
        if head in ("poplin::matMul", "poplin::matMulGrouped"):
            A, B, seq, dt = a[1], a[2], a[3], a[4]
            assert A.ndim == B.ndim == (2 if head == "poplin::matMul" else 3), f"{head} of {A.shape} x {B.shape}"
            out = np.empty(np.matmul(np.empty(A.shape, np.int8), np.empty(B.shape, np.int8)).shape, dt)
            wide = np.float32 if A.dtype == np.float16 else A.dtype  # partials in float
            seq.append(lambda: np.copyto(out, np.matmul(A.astype(wide), B.astype(wide)).astype(dt)))
            return out
        if head == "popnn::nonLinearity":
            assert a[1] == "SOFTMAX_STABLE"
            x, seq = a[2], a[3]
            out = np.empty(x.shape, x.dtype)

            def softmax() -> None:
                acc = x.astype(np.float32) if x.dtype == np.float16 else x
                ex = np.exp(acc - np.max(acc, axis=-1, keepdims=True))
                np.copyto(out, (ex / np.sum(ex, axis=-1, keepdims=True)).astype(x.dtype))
            seq.append(softmax)
            return out
        if head == "popops::zero":
            t, seq = a[1], a[2]
            seq.append(lambda: t.fill(0))
            return None
        if head == "popops::multiUpdateAdd":
            t, s_, offsets, scale, seq = a[1], a[2], a[3], a[4], a[7]

            def update() -> None:
                upd = (scale.astype(t.dtype) * s_[:, 0, :]).astype(t.dtype)
                np.add.at(t, offsets[:, 0].astype(np.int64), upd)
            seq.append(update)
            return None
        if head in ("popops::SlicePlan", "OptionFlags"):
            return None
        if head == "popops::encodeOneHot":
            idx, enc, seq = a[1], a[2], a[3]

            def onehot() -> None:
                enc.fill(0)
                enc[np.arange(len(idx)), idx.astype(np.int64)] = 1
            seq.append(onehot)
            return None
        raise ValueError(f"the simulator does not model {head}()")

    @staticmethod
    def _write(dst: np.ndarray, value: np.ndarray) -> None:
        assert value.dtype == dst.dtype, f"writing {value.dtype} into a {dst.dtype} tensor"
        np.copyto(dst, np.broadcast_to(value, dst.shape))

    # -- statements
    def execute(self, statements: list[str], env: dict[str, Any]) -> Any:
        for text in statements:
            st = parse_statement(text.strip().rstrip(";"))
            if st[0] == "decl":
                if st[3] is None:
                    env[st[2]] = Seq() if st[1] == "Sequence" else []
                else:
                    env[st[2]] = self.ev(st[3], env)
            elif st[0] == "assign":
                env[st[1]] = self.ev(st[2], env)
            elif st[0] == "return":
                return self.ev(st[1], env)
            else:
                self.ev(st[1], env)
        return None


# ---------------------------------------------------------------- whole programs
_FUNC = re.compile(r"^(?:Subgraph|Sequence) (build\w*)\(([^)]*)\) \{\n(.*?)^\}\n", re.M | re.S)


def load_program(source: str, data_dir: Path | None = None) -> tuple[Machine, Seq]:
    """Build the emitted program on the numpy machine; returns it and the step Sequence."""
    data = {p.name: p.read_bytes() for p in data_dir.glob("*.bin")} if data_dir and data_dir.exists() else {}
    m = Machine(data)
    funcs = {name: ([p.split()[-1].lstrip("&") for p in params.split(",")], body)
             for name, params, body in _FUNC.findall(source)}

    def invoke(name: str) -> Callable[..., Any]:
        params, body = funcs[name]
        return lambda *args: m.execute(split_statements(body), dict(zip(params, args)))
    for name in funcs:
        m.calls[name] = invoke(name)
    main = source[source.index("int main("):]
    build = main[main.index("// Build the program"):main.index("Engine engine")].replace("options.dataDir", "dataDir")
    env: dict[str, Any] = {"graph": object(), "dataDir": "data"}
    m.execute(split_statements(build), env)
    return m, env["stepProgram"]


def run_program(source: str, data_dir: Path | None, feeds: dict[str, np.ndarray], iterations: int = 1
                ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Run the emitted program `iterations` times: (variables read back by host name, d2h streams stacked).
    `feeds` maps h2d stream names to arrays of shape (iterations, *shape)."""
    m, step = load_program(source, data_dir)
    for name, s in m.streams.items():
        if s.h2d:
            s.data = [np.asarray(feeds[name][i], s.dtype).reshape(-1) for i in range(iterations)]
    for _ in range(iterations):
        step.run()
    outs = {n: np.stack(s.data) for n, s in m.streams.items() if not s.h2d}
    return {k: np.array(v) for k, v in m.state.items()}, outs
