"""Every backend lowers every op kind of the registry, or refuses it with a reason: asked of each
backend's one rule table (compiler/backends/rules.py), so a new op kind without its lowerings fails
here rather than in a user's program."""
from __future__ import annotations

import pytest

from compiler.backends.llvm import rules as llvm_prims
from compiler.backends.llvm import special as llvm_ops
from compiler.backends.onnx import rules as onnx_rules
from compiler.backends.llvm import lower  # noqa: F401  (registers the kinds of matmul.py, reduce.py, ...)
from compiler.backends.poplar import ops as poplar_ops
from compiler.ops import OPS
from compiler.ops.primitives import Prim

TABLES = {"llvm": llvm_ops.SPECIAL, "onnx": onnx_rules.RULES, "poplar": poplar_ops.RULES}


@pytest.mark.parametrize("kind", sorted(OPS))
@pytest.mark.parametrize("backend", sorted(TABLES))
def test_every_backend_lowers_every_op_kind_or_says_why_not(backend, kind):
    table = TABLES[backend]
    if table.lowers(kind, elementwise=OPS[kind].decompose is not None):
        return
    assert table.refused.get(kind), f"the {backend} backend neither lowers {kind} nor refuses it with a reason"


@pytest.mark.parametrize("prim", list(Prim))
def test_the_llvm_loop_body_lowers_every_primitive(prim):
    assert llvm_prims.RULES.lowers(prim), f"no LLVM rule for primitive {prim.value!r}"


def test_a_missing_rule_fails_the_check(monkeypatch):
    table = TABLES["poplar"]
    monkeypatch.delitem(table, "MatMul")  # a new kind without its Poplar rule looks like this
    assert not table.lowers("MatMul")
    assert "add a rule in compiler/backends/poplar/ops.py" in table.missing("MatMul.3", "MatMul")
