"""Helpers for the LLVM backend tests: small programs over variables, run compiled and interpreted."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from compiler import popxl
from compiler.driver import CompileOptions
from compiler.ir import DType
from compiler.popxl import ops
from session_helpers import assert_close, run_session

Body = Callable[[dict[str, popxl.Tensor]], "dict[str, popxl.Tensor] | None"]


def np_dtype(dt: Any) -> np.dtype:
    """numpy dtype of a test parameter ("bfloat16" names the ml_dtypes type)."""
    return DType[dt].numpy if isinstance(dt, str) else np.dtype(dt)


def program(arrays: dict[str, np.ndarray], body: Body) -> Callable[[], Any]:
    """A builder of an Ir whose variables hold `arrays`; tensors `body` returns are copied into fresh
    variables named out_<key>, so every result is compared."""
    def build() -> Any:
        ir = popxl.Ir()
        with ir.main_graph:
            ts = {k: popxl.variable(v.copy(), name=k, downcast=False) for k, v in arrays.items()}
            for name, t in (body(ts) or {}).items():
                o = popxl.variable(np.zeros(t.shape, t.dtype.numpy), name=f"out_{name}", downcast=False)
                ops.var_updates.copy_var_update_(o, t)
        return ir
    return build


def compare(build: Callable[[], Any], levels: tuple[int, ...] = (0, 2), exact: bool = False, runs: int = 1,
            inputs: Callable[[Any], dict] | None = None, atol: float | None = None, threads: int | None = None
            ) -> dict[str, np.ndarray]:
    """Run `build()` on the interpreter (as built) and compiled at each pipeline level; compare every
    variable and stream output. Returns the reference variables."""
    ir = build()
    ref, ref_outs = run_session(ir, "interpreter", inputs(ir) if inputs else None, runs, CompileOptions(level=0))
    for level in levels:
        ir = build()
        opts = CompileOptions(level=level, use_cache=False, threads=threads)
        got, outs = run_session(ir, "cpu", inputs(ir) if inputs else None, runs, opts)
        pairs = [(f"level {level} {k}", got[k], ref[k]) for k in ref]
        pairs += [(f"level {level} run {r} {k}", b[k], a[k]) for r, (a, b) in enumerate(zip(ref_outs, outs)) for k in a]
        for name, g, w in pairs:
            check(name, g, w, exact, atol)
    return ref


def check(name: str, got: np.ndarray, want: np.ndarray, exact: bool = False, atol: float | None = None) -> None:
    """Equal (NaN == NaN) when exact or integer, else within the dtype's tolerance (or rtol 1e-3 + atol)."""
    assert got.shape == want.shape and got.dtype == want.dtype, (
        f"{name}: got {got.dtype}{got.shape}, want {want.dtype}{want.shape}")
    if str(want.dtype) == "bfloat16":  # numpy's testing helpers do not see NaN in ml_dtypes arrays
        got, want = got.astype(np.float32), want.astype(np.float32)
        if not exact and atol is None:
            np.testing.assert_allclose(got, want, rtol=2e-2, atol=2e-3, err_msg=name)
            return
    if exact or want.dtype.kind not in "f":
        np.testing.assert_array_equal(got, want, err_msg=name)
    elif atol is not None:
        np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=1e-3, atol=atol, err_msg=name)
    else:
        assert_close(name, got, want)


def sgd_program(shapes, normalised: bool = False) -> Callable[[], popxl.Ir]:
    """A builder of SGD on float32 variables of `shapes`, one called update graph each (tanh of the
    gradient, optionally divided by its norm so the graph needs workspace)."""
    def build():
        ir = popxl.Ir()
        with ir.main_graph:
            lr = popxl.variable(np.asarray(0.1, np.float32), name="lr")
            for i, shape in enumerate(shapes):
                n = int(np.prod(shape))
                w = popxl.variable(np.linspace(-1, 1, n).reshape(shape).astype(np.float32), name=f"w{i}")
                g = popxl.variable(np.cos(np.arange(n)).reshape(shape).astype(np.float32), name=f"g{i}")

                def sgd(t: popxl.TensorByRef, d: popxl.Tensor, lr: popxl.Tensor):
                    e = ops.tanh(d)
                    if normalised:  # e and its norm live in the called graph's workspace region
                        e = e / ops.sqrt(ops.sumsquare(e) + 1.0)
                    ops.scaled_add_(t, e, b=-lr)

                ops.call(ir.create_graph(sgd, w, g, lr), w, g, lr)
        return ir
    return build


def lowered_modules(work: Any, prefix: str = "optc") -> list[Any]:
    """The llvmlite modules of an optimised Ir before LLVM sees them: the graphs' module first, then
    one per outlined kernel (outline.py)."""
    from compiler.backends.llvm.lower import lower
    from compiler.backends.llvm.outline import KernelTable

    table = KernelTable()
    module, _ = lower(work, prefix, kernels=table)
    return [module, *table.modules.values()]
