"""The functional Optimizer: write `call_param` (the update of one parameter) and optionally `call_model`
(model-wide work such as the time step or gradient clipping); the first call traces and compiles, later
calls run the compiled kernel in place on the parameter and state arrays.

State: attributes holding numpy arrays (directly, or in dicts keyed by parameter) are the optimizer's
state; they are read and written by the compiled code. State created in call_param the first time a
key is seen (`self.m[key] = jnp.zeros_like(param)`) is created as numpy arrays during tracing.
Hyper-parameters stored as Python floats are baked into the kernel; store one as a numpy array to make
it a kernel input (an lr schedule then never recompiles). The program is traced again only when the
parameters' keys, shapes or dtypes change, or when the state's structure does.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from compiler import popxl
from compiler.driver import CompileOptions, compile
from compiler.popxl import ops


def _state_slots(obj: Any) -> dict[tuple, np.ndarray]:
    """(attribute, key or None) -> array for every numpy array held by the optimizer."""
    slots = {}
    for name, val in vars(obj).items():
        if name.startswith("_"):
            continue
        if isinstance(val, np.ndarray):
            slots[(name, None)] = val
        elif isinstance(val, dict):
            for k, v in val.items():
                if isinstance(v, np.ndarray):
                    slots[(name, k)] = v
    return slots


class Optimizer:
    device = "cpu"

    def call_model(self, grads: dict, params: dict | None = None, loss: Any = None, **kw: Any) -> dict:
        return grads

    def call_param(self, key: Any, grad: Any, param: Any = None, **kw: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define call_param(key, grad, param)")

    # ---------------------------------------------------------------- tracing
    def _signature(self, params: dict, grads: dict) -> tuple:
        ps = tuple((k, p.shape, p.dtype.str) for k, p in params.items())
        gs = tuple((k, g.shape, g.dtype.str) for k, g in grads.items())
        st = tuple((n, k, a.shape, a.dtype.str) for (n, k), a in _state_slots(self).items())
        hyper = tuple((n, v) for n, v in sorted(vars(self).items()) if isinstance(v, (int, float)) and not n.startswith("_"))
        return ps, gs, st, hyper

    def _trace(self, params: dict, grads: dict) -> tuple[Any, dict]:
        ir = popxl.Ir()
        slots: dict[tuple, int] = {}
        saved = {n: v for n, v in vars(self).items() if not n.startswith("_")}
        state_vars: dict[tuple, popxl.Tensor] = {}
        try:
            with ir.main_graph:
                tp = {k: popxl.variable(np.zeros_like(p), name=f"param.{k}") for k, p in params.items()}
                tg = {k: popxl.variable(np.zeros_like(g), name=f"grad.{k}") for k, g in grads.items()}
                slots.update({("__param__", k): t._value.id for k, t in tp.items()})
                slots.update({("__grad__", k): t._value.id for k, t in tg.items()})
                for n, v in saved.items():
                    if isinstance(v, np.ndarray):
                        state_vars[(n, None)] = t = popxl.variable(v, name=n)
                        setattr(self, n, t)
                    elif isinstance(v, dict):
                        rd = _RecordingDict()
                        for k, a in v.items():
                            if isinstance(a, np.ndarray):
                                a = state_vars[(n, k)] = popxl.variable(a, name=f"{n}.{k}")
                            dict.__setitem__(rd, k, a)
                        setattr(self, n, rd)
                new_grads = self.call_model(dict(tg), params=dict(tp))
                for k in params:
                    upd = self.call_param(k, new_grads[k], param=tp[k])
                    ops.var_updates.copy_var_update_(tp[k], tp[k] - _as_tensor(upd, tp[k]))
                for n in saved:
                    val = getattr(self, n)
                    if (n, None) in state_vars:
                        _write_back(state_vars[(n, None)], val)
                    elif isinstance(val, _RecordingDict):
                        for k, t in val.items():
                            if (n, k) in state_vars:
                                _write_back(state_vars[(n, k)], t)
                            elif isinstance(val.first.get(k), popxl.Variable):  # created by jnp.zeros_like
                                state_vars[(n, k)] = val.first[k]
                                _write_back(val.first[k], t)
            exe = compile(ir, CompileOptions(device=self.device))
        finally:
            for n, v in saved.items():
                setattr(self, n, v)
        for (n, k), t in state_vars.items():
            if _np_state(self, n, k) is None:  # state created while tracing starts as zeros
                getattr(self, n)[k] = np.zeros(t.shape, t.dtype.numpy)
            slots[(n, k)] = t._value.id
        return exe, slots

    def __call__(self, params: dict, grads: dict, loss: Any = None) -> dict:
        """Apply one step in place on `params` (dict of numpy arrays); returns params."""
        missing = set(params) - set(grads)
        if missing:
            raise KeyError(f"no gradient given for parameters {sorted(missing)}")
        for k, p in params.items():
            if not isinstance(p, np.ndarray) or not p.flags.c_contiguous or not p.flags.writeable:
                raise ValueError(f"parameter {k!r} must be a writeable, C-contiguous numpy array")
        sig = self._signature(params, grads)
        cache = self.__dict__.setdefault("_compiled", {})
        if sig not in cache:
            # state created on the first trace changes the signature; trace until it settles
            exe, slots = self._trace(params, grads)
            sig = self._signature(params, grads)
            cache[sig] = (exe, slots)
            self.__dict__["_traces"] = self.__dict__.get("_traces", 0) + 1
        exe, slots = cache[sig]
        arrays = {}
        for (n, k), vid in slots.items():
            if n == "__param__":
                arrays[vid] = params[k]
            elif n == "__grad__":
                arrays[vid] = np.ascontiguousarray(grads[k])
            else:
                arrays[vid] = _np_state(self, n, k)
        exe.run(arrays, {}, 1)
        return params

    @property
    def traces(self) -> int:
        return self.__dict__.get("_traces", 0)


class _RecordingDict(dict):
    """A state dict during tracing: remembers the first value stored under each key."""

    def __init__(self) -> None:
        super().__init__()
        self.first: dict[Any, Any] = {}

    def __setitem__(self, k: Any, v: Any) -> None:
        self.first.setdefault(k, v)
        super().__setitem__(k, v)


def _write_back(var: popxl.Tensor, value: Any) -> None:
    if value is not var:
        ops.var_updates.copy_var_update_(var, _as_tensor(value, var))


def _as_tensor(x: Any, like: popxl.Tensor) -> popxl.Tensor:
    if isinstance(x, popxl.Tensor):
        return x if x.dtype == like.dtype else ops.cast(x, like.dtype)
    return like._other(np.asarray(x, like.dtype.numpy))


def _np_state(obj: Any, n: str, k: Any) -> np.ndarray | None:
    v = getattr(obj, n, None)
    if k is None:
        return v if isinstance(v, np.ndarray) else None
    if isinstance(v, dict):
        a = v.get(k)
        return a if isinstance(a, np.ndarray) else None
    return None
