"""Custom gradient graphs from a Module's `build_grad` (popxl.addons semantics).

Inside `build_grad`, `self.aux[key]` gives the forward tensor stored under `key` during `build` as a
new input of the gradient graph (the forward graph gains it as an output: "stitching"), and
`self.var_grad[name] = t` names the gradient of the variable input `name`. `build_grad` takes the
gradients of the forward outputs and returns the gradients of the non-variable forward inputs.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable

from compiler import popxl
from compiler.autodiff import GradInfo, sync_call_sites

if TYPE_CHECKING:
    from .graph import GraphWithNamedArgs
    from .module import Module

BUILDING: list["Module"] = []  # modules whose `build` runs now (a direct call inside is not inlining)
BUILDING_GRAD: list["Module"] = []  # the module whose `build_grad` runs now


def _outside(what: str) -> Exception:
    return Exception(f"You can only use `{what}` within the `build_grad` method, which runs through "
                     "`create_grad_graph` or `autodiff`.")


class Aux:
    """Forward tensors (or values) that the gradient graph needs, by key."""

    def __init__(self) -> None:
        self._fwd: dict[str, Any] = {}
        self._inputs: dict[str, popxl.Tensor] = {}  # key -> gradient-graph input, in creation order
        self.grad_to_fwd: dict[popxl.Tensor, popxl.Tensor] = {}

    def __setitem__(self, key: str, value: Any) -> None:
        self._fwd[key] = value

    def __getitem__(self, key: str) -> Any:
        if not BUILDING_GRAD or BUILDING_GRAD[-1].aux is not self:
            raise _outside("aux[...]")
        v = self._fwd[key]
        if not isinstance(v, popxl.Tensor):
            return v
        if key not in self._inputs:
            t = popxl.graph_input(v.shape, v.dtype, key)
            self._inputs[key] = t
            self.grad_to_fwd[t] = v
        return self._inputs[key]

    def __contains__(self, key: str) -> bool:
        return key in self._fwd

    def copy(self) -> "Aux":
        new = Aux()
        new._fwd = dict(self._fwd)
        return new

    def __repr__(self) -> str:
        return f"Aux({self._fwd!r})"


class VarGrads:
    """The gradients of the forward graph's variable inputs, by name (set inside build_grad)."""

    def __init__(self, variables: dict[str, popxl.Tensor] | None = None) -> None:
        self._dict: dict[str, popxl.Tensor] = {}
        self._vars = variables

    def __setitem__(self, key: str, t: popxl.Tensor) -> None:
        if not BUILDING_GRAD or BUILDING_GRAD[-1].var_grad is not self or self._vars is None:
            raise _outside("var_grad[...]")
        if not isinstance(t, popxl.Tensor):
            raise TypeError(f"var_grad[{key!r}] must be a Tensor, got {type(t).__name__}")
        if key not in self._vars:
            raise KeyError(f"var_grad: {key!r} is not a variable input; variables: {list(self._vars)}")
        if t.shape != self._vars[key].shape:
            raise ValueError(f"var_grad[{key!r}] has shape {t.shape}; the variable has {self._vars[key].shape}")
        self._dict[key] = t

    def __getitem__(self, key: str) -> popxl.Tensor:
        return self._dict[key]

    def __contains__(self, key: str) -> bool:
        return key in self._dict


def create_grad_graph(module: "Module", fwd: "GraphWithNamedArgs", grads_provided: Iterable[popxl.Tensor] | None = None,
                      grads_required: Iterable[popxl.Tensor] | None = None) -> "GraphWithNamedArgs":
    """The gradient graph `module.build_grad` defines for `fwd` (a graph made by `module.create_graph`)."""
    from .dot_tree import NamedTensors
    from .graph import GraphWithNamedArgs

    g = fwd.graph
    provided = list(g.outputs if grads_provided is None else grads_provided)
    required = list(g.inputs if grads_required is None else grads_required)
    for t in provided:
        if t not in g.outputs:
            raise ValueError(f"grads_provided: {t!r} is not an output of {g.name!r}")
    for t in required:
        if t not in g.inputs:
            raise ValueError(f"grads_required: {t!r} is not an input of {g.name!r}")
    names = {t: k for k, t in fwd.args.to_dict().items()}
    variables = {names[t]: t for t in required if t in names}
    module.aux = (fwd.aux or Aux()).copy()
    module.var_grad = VarGrads(variables)
    ir = g.ir
    BUILDING_GRAD.append(module)
    try:
        grad = ir.create_graph(module.build_grad, *[t.spec for t in provided])
    finally:
        BUILDING_GRAD.pop()
    returned = list(grad.outputs)
    missing = set(variables) - set(module.var_grad._dict)
    if missing:
        raise Exception(f"Not all variable gradients have been specified in self.var_grad: {sorted(missing)}. To "
                        "leave some out, pass grads_required to autodiff.")
    nonvar = [t for t in required if t not in names]
    if len(returned) != len(nonvar):
        raise Exception(f"build_grad returned {len(returned)} gradients but the forward graph has {len(nonvar)} "
                        "non-variable inputs whose gradients are required (pass grads_required to choose them)")
    outs, it = [], iter(returned)
    for t in required:
        outs.append(module.var_grad[names[t]] if t in names else next(it))
    for t, r in zip(outs, required):
        if t.shape != r.shape:
            raise ValueError(f"the gradient of {r.name!r} has shape {t.shape}, the input has {r.shape}")
    grad._g.outputs = [grad.resolve(t._value) for t in outs]
    # stitching: each aux tensor the gradient graph reads becomes a forward output
    fwd_outs = g._g.outputs
    for v in module.aux.grad_to_fwd.values():
        val = g.resolve(v._value)
        if not any(o is val for o in fwd_outs):
            fwd_outs.append(val)
    sync_call_sites(ir, g._g)
    info = GradInfo(grad._g, g._g,
                    [("grad", t._value) for t in provided] +
                    [("fwd", g.resolve(v._value)) for v in module.aux.grad_to_fwd.values()],
                    [t._value for t in required])
    module.aux, module.var_grad = Aux(), VarGrads()
    return GraphWithNamedArgs(grad, NamedTensors(),
                              grad_graph_info=popxl.transforms.GradGraphInfo(info, grad, g))


def check_called_graphs(graph: popxl.Graph, known: dict) -> None:
    """autodiff cannot see through a graph built by a module with its own build_grad: it needs that graph's
    gradient in called_graphs_grad_info."""
    seen: set[int] = set()
    stack = [graph._g]
    while stack:
        cur = stack.pop()
        for callee in cur.called_graphs():
            if id(callee) in seen:
                continue
            seen.add(id(callee))
            if callee.info.get("build_grad") and not any(k._g is callee for k in known):
                raise Exception(f"graph {callee.id!r} is marked as unsafe to autodiff: its module implements "
                                "`build_grad`. Pass its GradGraphInfo in called_graphs_grad_info (call_module does "
                                "this for you).")
            stack.append(callee)
