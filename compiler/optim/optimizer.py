"""The functional Optimizer: write `call_param` (the update of one parameter) and optionally
`call_model` (model-wide work: the time step, global-norm clipping); calling the optimizer applies
one step in place.

    class Sgd(Optimizer):
        def __init__(self, lr=0.1):
            self.lr = lr                                # a Python float: baked into the kernel
        def call_param(self, key, grad, param=None):
            return self.lr * grad                      # the update: param <- param - update

    opt(params, grads)                                 # dicts of numpy arrays; params change in place

The first call traces the hooks on tensors (compiler/optim/trace.py says what becomes state, input
or constant) and compiles the result; later calls with the same signature (parameter keys, shapes,
dtypes, the state's structure, the baked values) run the compiled kernel on the caller's arrays and
the state arrays, without copies. Python-number hyper-parameters are baked in (changing one
compiles again); store one as a numpy array (`self.lr = np.asarray(1e-3, np.float32)`) to make it
a kernel input, so a schedule never recompiles. State is created lazily, on first sight of a key
(`self.m[key] = jnp.zeros_like(param)`). The hooks run only while tracing: they must not have
Python side effects other than on the optimizer's state.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from compiler.driver import CompileOptions, compile

from . import numpy as jnp
from .kernels import KernelBuilder
from .trace import Trace, TraceDict, is_baked, is_value, plain, write_back

_MISSING = object()


class TracingError(RuntimeError):
    """The optimizer's hooks did something that cannot be compiled; the message says what to change."""


class _Compiled:
    def __init__(self, trace: Trace, options: CompileOptions) -> None:
        self.exe = compile(trace.ir, options)
        self.vids = trace.kb.vids
        self.bindings = trace.bindings
        self.temps = [np.full(s, f, d) for s, d, f in trace.temps]


class Optimizer:
    """Base class of functional optimizers (see the module docstring)."""

    device = "cpu"
    compile_options: CompileOptions | None = None

    def call_model(self, grads: dict, params: dict | None = None, loss: Any = None, **kw: Any) -> dict:
        """Model-wide work before the per-parameter updates; returns the gradients to use."""
        return grads

    def call_param(self, key: Any, grad: Any, param: Any = None, **kw: Any) -> Any:
        """The update of one parameter: the step sets param <- param - update."""
        raise NotImplementedError(f"{type(self).__name__} must define call_param(self, key, grad, param=None)")

    def __setattr__(self, name: str, value: Any) -> None:
        tr = self.__dict__.get("_first_set")
        if tr is not None and not name.startswith("_"):
            tr.setdefault(name, value)
        object.__setattr__(self, name, value)

    # ------------------------------------------------------------------ public counters
    @property
    def traces(self) -> int:
        """How many times the hooks were traced."""
        return self.__dict__.get("_n_traces", 0)

    @property
    def compiles(self) -> int:
        """How many kernels were compiled (an array hyper-parameter changing never adds one)."""
        return self.__dict__.get("_n_compiles", 0)

    # ------------------------------------------------------------------ the step
    def __call__(self, params: dict, grads: dict, loss: Any = None, **kw: Any) -> dict:
        """Apply one step in place on `params` (a dict of numpy arrays); returns params."""
        _check_inputs(params, grads)
        sig = self._signature(params, grads, loss, kw)
        cache: dict = self.__dict__.setdefault("_kernels", {})
        entry = cache.get(sig)
        if entry is None:
            trace = self._trace(params, grads, loss, kw)
            entry = cache[sig] = self._compile(trace)
            after = self._signature(params, grads, loss, kw)
            if after != sig and after not in cache:  # state was created: is the steady program the same?
                if self._trace(params, grads, loss, kw).structure() == trace.structure():
                    cache[after] = entry
        arrays = [self._resolve(b, params, grads, loss, kw, entry) for b in entry.bindings]
        entry.exe.run(dict(zip(entry.vids, arrays)), {}, 1)
        return params

    def eager(self, params: dict, grads: dict, loss: Any = None, **kw: Any) -> dict:
        """The same step run by numpy, uncompiled (the hooks see numpy arrays): the reference semantics."""
        _check_inputs(params, grads)
        new_grads = self.call_model(dict(grads), params=dict(params), loss=loss, **kw)
        for k, p in params.items():
            np.subtract(p, self.call_param(k, new_grads[k], param=p, **kw), out=p, casting="same_kind")
        return params

    def _compile(self, trace: Trace) -> _Compiled:
        options = self.compile_options or CompileOptions(device=self.device)
        entry = _Compiled(trace, options)
        self.__dict__["_n_compiles"] = self.compiles + 1
        return entry

    def _resolve(self, b: tuple, params: dict, grads: dict, loss: Any, kw: dict, entry: _Compiled) -> np.ndarray:
        kind = b[0]
        if kind == "param":
            return params[b[1]]
        if kind == "grad":
            return _c_array(grads[b[1]])
        if kind == "state":
            v = getattr(self, b[1])
            return v if b[2] is None else v[b[2]]
        if kind == "loss":
            return _host(loss)
        if kind == "kw":
            return _host(kw[b[1]])
        return entry.temps[b[1]]

    def _signature(self, params: dict, grads: dict, loss: Any, kw: dict) -> tuple:
        def spec(a: Any) -> tuple:
            a = np.asarray(a)
            return a.shape, a.dtype.str
        state, baked = [], []
        for n, v in vars(self).items():
            if n.startswith("_"):
                continue
            if isinstance(v, np.ndarray):
                state.append((n, None, v.shape, v.dtype.str))
            elif isinstance(v, dict):
                state += [(n, k, a.shape, a.dtype.str) for k, a in v.items() if isinstance(a, np.ndarray)]
            elif is_baked(v):
                baked.append((n, type(v).__name__, repr(v)))
        return (tuple((k, spec(p)) for k, p in params.items()), tuple((k, spec(grads[k])) for k in params),
                None if loss is None else spec(loss),
                tuple((k, spec(v)) if isinstance(v, (np.ndarray, np.generic)) else (k, v) for k, v in kw.items()),
                tuple(state), tuple(baked))

    def _trace(self, params: dict, grads: dict, loss: Any, kw: dict) -> Trace:
        tr = Trace(KernelBuilder())
        saved = {n: v for n, v in vars(self).items() if not n.startswith("_")}
        olds: dict[tuple, Any] = {}
        self.__dict__["_n_traces"] = self.traces + 1
        try:
            with jnp.tracing(tr.new_state):
                tp = {k: tr.buffer(("param", k), f"param[{k}]", p.shape, p.dtype) for k, p in params.items()}
                tg = {k: tr.buffer(("grad", k), f"grad[{k}]", np.shape(grads[k]), np.asarray(grads[k]).dtype)
                      for k in params}
                tl = None if loss is None else tr.buffer(("loss",), "loss", np.shape(loss), _host(loss).dtype)
                tkw = {k: tr.buffer(("kw", k), k, np.shape(v), _host(v).dtype)
                       if isinstance(v, (np.ndarray, np.generic)) else v for k, v in kw.items()}
                for n, v in saved.items():
                    if isinstance(v, np.ndarray):
                        olds[(n, None)] = tr.buffer(("state", n, None), n, v.shape, v.dtype)
                        object.__setattr__(self, n, olds[(n, None)])
                    elif isinstance(v, dict):
                        d = TraceDict({})
                        for k, a in v.items():
                            if isinstance(a, np.ndarray):
                                a = olds[(n, k)] = tr.buffer(("state", n, k), f"{n}[{k}]", a.shape, a.dtype)
                            dict.__setitem__(d, k, a)
                        object.__setattr__(self, n, d)
                    elif is_baked(v):
                        object.__setattr__(self, n, plain(v))
                first: dict[str, Any] = {}
                self.__dict__["_first_set"] = first
                new_grads = self.call_model(dict(tg), params=dict(tp), loss=tl, **tkw)
                if not isinstance(new_grads, dict) or set(new_grads) != set(params):
                    raise TracingError(f"{type(self).__name__}.call_model must return the dict of gradients (keys "
                                       f"{sorted(map(str, params))}), got {type(new_grads).__name__}")
                updates = {}
                for k in params:
                    u = self.call_param(k, new_grads[k], param=tp[k], **tkw)
                    if u is None:
                        raise TracingError(f"{type(self).__name__}.call_param returned None for parameter {k!r}: "
                                           "return the update (the step sets param <- param - update)")
                    updates[k] = u
                del self.__dict__["_first_set"]
                for k, u in updates.items():
                    write_back(tp[k], tp[k] - u)  # param -= update, in the param's dtype
                created = self._store_state(tr, saved, olds, first)
        finally:
            self.__dict__.pop("_first_set", None)
            for n in [n for n in vars(self) if not n.startswith("_")]:
                if n not in saved:
                    object.__delattr__(self, n)
            for n, v in saved.items():
                object.__setattr__(self, n, v)
        for (n, k), (shape, dtype, fill) in created.items():
            arr = np.full(shape, fill, dtype)
            if k is None:
                object.__setattr__(self, n, arr)
            else:
                getattr(self, n)[k] = arr
        return tr

    def _store_state(self, tr: Trace, saved: dict, olds: dict, first: dict) -> dict:
        """Write the traced final value of every state slot back; returns the new slots' (shape, dtype, fill)."""
        created = {}
        for n, val in [(n, v) for n, v in vars(self).items() if not n.startswith("_")]:
            before = saved.get(n, _MISSING)
            if isinstance(val, TraceDict):
                for k, v in val.items():
                    if is_value(v):
                        c = tr.store((n, k), val.first.get(k, v), v, olds.get((n, k)))
                        if c is not None:
                            created[(n, k)] = c
            elif is_value(val):
                c = tr.store((n, None), first.get(n, val), val, olds.get((n, None)))
                if c is not None:
                    created[(n, None)] = c
            elif before is not _MISSING and is_baked(before) and not _same(plain(before), val):
                raise TracingError(
                    f"{type(self).__name__}: self.{n} changed from {before!r} to {val!r} while tracing; Python "
                    "numbers are baked into the compiled step, so the change would happen only once. Keep it in a "
                    f"numpy array instead (self.{n} = np.asarray({before!r}, np.float32)): it becomes state that "
                    "the compiled step updates")
        return created


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b) and type(a) is type(b)
    except Exception:
        return a is b


def _host(x: Any) -> np.ndarray:
    a = np.asarray(x)
    if a.dtype == np.float64 and not isinstance(x, (np.ndarray, np.generic)):
        a = a.astype(np.float32)  # a Python float loss is a float32 input
    return _c_array(a)


def _c_array(x: Any) -> np.ndarray:
    """x as a C-contiguous array, copied only if it is not one (ascontiguousarray would make 0-d arrays 1-d)."""
    a = np.asarray(x)
    return a if a.flags.c_contiguous else a.copy(order="C")


def _check_inputs(params: dict, grads: dict) -> None:
    missing = [k for k in params if k not in grads]
    if missing:
        raise KeyError(f"no gradient given for parameters {missing}; pass grads with the same keys as params")
    for k, p in params.items():
        if not isinstance(p, np.ndarray):
            raise TypeError(f"parameter {k!r} is a {type(p).__name__}; the step updates numpy arrays in place")
        if p.dtype.kind != "f" and str(p.dtype) != "bfloat16":  # an update of ints would truncate silently
            raise TypeError(f"parameter {k!r} is {p.dtype}; optimizers update floating-point parameters "
                            "(float16, bfloat16, float32, float64): convert it, or leave it out of params")
        if not p.flags.c_contiguous or not p.flags.writeable:
            raise ValueError(f"parameter {k!r} must be a writeable, C-contiguous numpy array (got strides "
                             f"{p.strides}, writeable={p.flags.writeable}); use np.ascontiguousarray and keep "
                             "the returned array as the parameter")
        g = grads[k]
        if np.shape(g) != p.shape:
            raise ValueError(f"gradient of {k!r} has shape {np.shape(g)}, the parameter {p.shape}")
