"""Custom gradient graphs from a Module's `build_grad` (popxl.addons semantics).

Inside `build_grad`, `self.aux[key]` gives the forward tensor stored under `key` during `build` as a
new input of the gradient graph (the forward graph gains it as an output: "stitching"), and
`self.var_grad[name] = t` names the gradient of the variable input `name`. `build_grad` takes the
gradients of the forward outputs and returns the gradients of the non-variable forward inputs.
"""
from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, Iterable

from compiler import popxl
from compiler.autodiff import GradInfo, sync_call_sites

if TYPE_CHECKING:
    from .graph import GraphWithNamedArgs
    from .module import Module

BUILDING: list["Module"] = []  # modules whose `build` runs now (a direct call inside is not inlining)
BUILDING_GRAD: list["Module"] = []  # the module whose `build_grad` runs now


def _outside(what: str) -> Exception:
    # popxl.addons' wording ("within the `build_graph` method"): users' tests match on it
    return Exception(f"{what}: you can only get items within the `build_graph` method of a gradient graph, "
                     "i.e. inside `build_grad`, which runs through `create_grad_graph` or `autodiff`.")


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
            raise _outside("aux")
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
        self._check_inside()
        if not isinstance(t, popxl.Tensor):
            raise TypeError(f"var_grad[{key!r}]: Not a tensor: {type(t).__name__}. Store the gradient Tensor.")
        assert self._vars is not None
        if key not in self._vars:
            raise KeyError(f"var_grad[{key!r}]: Not a variable input of the forward graph; its variables: "
                           f"{list(self._vars)}")
        if t.shape != self._vars[key].shape:
            raise ValueError(f"var_grad[{key!r}]: Shape or meta-shape of Tensor does not match variable. "
                             f"Tensor: {t.shape}, variable: {self._vars[key].shape}")
        self._dict[key] = t

    def _check_inside(self) -> None:
        if not BUILDING_GRAD or BUILDING_GRAD[-1].var_grad is not self or self._vars is None:
            raise _outside("var_grad")

    def __getitem__(self, key: str) -> popxl.Tensor:
        self._check_inside()
        return self._dict[key]

    def __contains__(self, key: str) -> bool:
        return key in self._dict


def create_grad_graph(module: "Module", fwd: "GraphWithNamedArgs", grads_provided: Iterable[popxl.Tensor] | None = None,
                      grads_required: Iterable[popxl.Tensor] | None = None) -> "GraphWithNamedArgs":
    """The gradient graph `module.build_grad` defines for `fwd` (a graph made by `module.create_graph`)."""
    from .dot_tree import NamedTensors
    from .graph import GraphWithNamedArgs

    g = fwd.graph
    if g._g.info.get("build_grad_applied"):
        raise Exception(f"Autodiff has already been applied to {g.name!r} with `build_grad`: its forward graph "
                        "gained the aux tensors as outputs. Create the graph again to get a second gradient graph.")
    provided = list(g.outputs if grads_provided is None else grads_provided)
    required = list(g.inputs if grads_required is None else grads_required)
    for t in provided:
        if t not in g.outputs:
            raise ValueError(f"A Tensor specified in `grads_provided` is not a output of `fwd_graph` {g.name!r}: "
                             f"{t!r}")
    for t in required:
        if t not in g.inputs:
            raise ValueError(f"A Tensor specified in `grads_required` is not a input of `fwd_graph` {g.name!r}: "
                             f"{t!r}")
    _check_signature(module, len(provided))
    names = {t: k for k, t in fwd.args.to_dict().items()}
    variables = {names[t]: t for t in required if t in names}
    module.aux = (fwd.aux or Aux()).copy()
    module.var_grad = VarGrads({k: t for t, k in names.items()})  # any variable may be set; required ones must
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
    if len(returned) > len(nonvar):
        raise Exception(f"Too many outputs in the grad graph: `build_grad` returned {len(returned)} tensors but "
                        f"the gradients of {len(nonvar)} non-variable forward inputs are required (pass "
                        "grads_required to choose them)")
    if len(returned) < len(nonvar):
        raise Exception(f"Not all forward graph inputs have been specified: `build_grad` returned {len(returned)} "
                        f"tensors but the gradients of {len(nonvar)} non-variable forward inputs are required "
                        "(pass grads_required to choose them)")
    for i, (t, r) in enumerate(zip(returned, nonvar)):
        if t.shape != r.shape:
            raise ValueError(f"Shape or meta-shape of output Tensor at position {i} of `build_grad` does not match "
                             f"its forward input {r.name!r}: {t.shape} vs {r.shape}")
    outs, it = [], iter(returned)
    for t in required:
        outs.append(module.var_grad._dict[names[t]] if t in names else next(it))
    grad._g.outputs = [grad.resolve(t._value) for t in outs]
    # stitching: each aux tensor the gradient graph reads becomes a forward output
    fwd_outs = g._g.outputs
    for v in module.aux.grad_to_fwd.values():
        val = g.resolve(v._value)
        if not any(o is val for o in fwd_outs):
            fwd_outs.append(val)
    sync_call_sites(ir.core, g._g)
    info = GradInfo(grad._g, g._g,
                    [("grad", t._value) for t in provided] +
                    [("fwd", g.resolve(v._value)) for v in module.aux.grad_to_fwd.values()],
                    [t._value for t in required])
    module.aux, module.var_grad = Aux(), VarGrads()
    g._g.info["build_grad_applied"] = True
    return GraphWithNamedArgs(grad, NamedTensors(),
                              grad_graph_info=popxl.transforms.GradGraphInfo(info, grad, g))


def _check_signature(module: "Module", n_provided: int) -> None:
    """build_grad takes one gradient per provided forward output, positionally (as popxl.addons checks)."""
    params = list(inspect.signature(module.build_grad).parameters.values())
    if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD, p.KEYWORD_ONLY) for p in params):
        raise TypeError(f"{type(module).__name__}.build_grad: the method signature must only have a fixed number of "
                        "positional parameters as inputs.: one per gradient of a forward output")
    if len(params) != n_provided:
        raise ValueError(f"{type(module).__name__}.build_grad: the {n_provided} gradients provided (the forward "
                         f"outputs, or grads_provided) do not match the signature, which takes {len(params)}")


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
