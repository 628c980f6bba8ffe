"""addons.Module.build_grad: a hand-written gradient graph gives the same values as autodiff, and each
misuse raises popxl.addons' exception type with the words users match on."""
from __future__ import annotations

from functools import partial

import numpy as np
import pytest

from compiler import addons, popxl
from compiler.popxl import ops

X = np.arange(12, dtype=np.float32).reshape(4, 3) / 7
DY = np.linspace(-1, 1, 12, dtype=np.float32).reshape(4, 3)


class Affine(addons.Module):
    """y = x @ w + b with its gradient by hand; `returns` picks what build_grad returns (for misuse)."""

    def __init__(self, returns: str = "dx", cache: bool = False) -> None:
        super().__init__(cache=cache)
        self.returns = returns

    def build(self, x: popxl.Tensor) -> popxl.Tensor:
        w = self.add_variable_input("w", partial(lambda: np.eye(3, dtype=np.float32) * 2), popxl.float32)
        b = self.add_variable_input("b", partial(np.ones, (3,)), popxl.float32)
        self.aux["x"] = x
        self.aux["w"] = w
        return (x @ w) + b

    def build_grad(self, dy: popxl.Tensor):
        dx = dy @ self.aux["w"].T
        self.var_grad["b"] = ops.sum(dy, 0)
        if self.returns != "no_w":
            self.var_grad["w"] = (dy.T @ self.aux["x"]).T
        return {"dx": dx, "two": (dx, dx), "none": None, "bad_shape": ops.sum(dy, 0), "no_w": dx}[self.returns]


def _grads(method: str) -> list[np.ndarray]:
    ir = popxl.Ir()
    with ir.main_graph:
        x = popxl.variable(X)
        dy = popxl.variable(DY)
        facts, fwd = Affine().create_graph(x)
        grad = fwd.autodiff(method=method)
        site = fwd.bind(facts.init()).call_with_info(x)
        outs = grad.call(dy, args=grad.grad_graph_info.inputs_dict(site))
        streams = [addons.host_store(t) for t in outs]
    with popxl.Session(ir, "cpu") as s:
        res = s.run()
    return [res[d] for d in streams]


def test_build_grad_matches_autodiff():
    by_hand, auto = _grads("build_grad"), _grads("autodiff")
    assert len(by_hand) == 3
    for a, b in zip(by_hand, auto):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    np.testing.assert_allclose(by_hand[0], DY @ (np.eye(3) * 2).T, rtol=1e-6)


def _fwd(module: addons.Module):
    x = popxl.variable(X)
    return module.create_graph(x)[1]


@pytest.mark.parametrize("returns, exc, words", [
    ("two", Exception, "Too many outputs in the grad graph"),
    ("none", Exception, "Not all forward graph inputs have been specified"),
    ("bad_shape", ValueError, "Shape or meta-shape of output Tensor at position 0"),
    ("no_w", Exception, "Not all variable gradients have been specified"),
])
def test_wrong_gradient_outputs(returns, exc, words):
    with popxl.Ir().main_graph:
        with pytest.raises(exc, match=words):
            _fwd(Affine(returns)).autodiff(method="build_grad")


def test_var_grad_and_aux_only_inside_build_grad():
    class Checked(Affine):
        def build_grad(self, dy):
            with pytest.raises(TypeError, match="Not a tensor"):
                self.var_grad["b"] = 0
            with pytest.raises(KeyError, match="Not a variable"):
                self.var_grad["z"] = dy
            with pytest.raises(ValueError, match="Shape or meta-shape of Tensor does not match variable"):
                self.var_grad["w"] = ops.sum(dy, 0)
            return super().build_grad(dy)

    with popxl.Ir().main_graph:
        m = Checked()
        fwd = _fwd(m)
        with pytest.raises(Exception, match="within the `build_graph` method"):
            m.var_grad["w"] = popxl.constant(1.0)
        with pytest.raises(Exception, match="within the `build_graph` method"):
            _ = m.aux["x"]
        fwd.autodiff(method="build_grad")


def test_signature_and_selection_errors():
    class Star(Affine):
        def build_grad(self, *dys):
            return None

    with popxl.Ir().main_graph:
        with pytest.raises(TypeError, match="fixed number of positional parameters"):
            _fwd(Star()).autodiff(method="build_grad")
        fwd = _fwd(Affine())
        other = popxl.variable(X)
        with pytest.raises(ValueError, match="do not match the signature"):
            fwd.autodiff(method="build_grad", grads_provided=[])
        with pytest.raises(ValueError, match="`grads_provided` is not a output of `fwd_graph`"):
            fwd.autodiff(method="build_grad", grads_provided=[other])
        with pytest.raises(ValueError, match="`grads_required` is not a input of `fwd_graph`"):
            fwd.autodiff(method="build_grad", grads_required=[other])
        # only the variable's gradient: build_grad still returns dx, one output too many
        with pytest.raises(Exception, match="Too many outputs"):
            fwd.autodiff(method="build_grad", grads_required=[fwd.args.b])
        fwd.autodiff(method="build_grad", grads_required=[fwd.graph.inputs[0], fwd.args.b])
        with pytest.raises(Exception, match="Autodiff has already been applied"):
            fwd.autodiff(method="build_grad")


def test_cache_refused_with_build_grad():
    with pytest.raises(ValueError, match="You cannot use graph caching if you have implemented `build_grad`"):
        Affine(cache=True)


def test_nested_call_module_keeps_the_inner_grad_graph():
    class Outer(addons.Module):
        def build(self, x):
            return self.call_module(Affine())(x)[0]

    class OuterOuter(addons.Module):
        def build(self, x):
            return self.call_module(Outer())(x * 1.0)[0]

    with popxl.Ir().main_graph:
        fwd = _fwd(OuterOuter())
        assert len(fwd.called_graphs_grad_info) == 1
        info = fwd.called_graphs_grad_info
        fwd.called_graphs_grad_info = {}
        with pytest.raises(Exception, match="marked as unsafe to autodiff"):
            fwd.autodiff(method="autodiff")
        fwd.called_graphs_grad_info = info
        assert len(fwd.autodiff(method="autodiff").graph.outputs) == 3
