"""Pass infrastructure: registry, PassManager (records, verification naming the culprit, dumps), levels."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import custom_optimiser
from compiler import popxl
from compiler.popxl import ops
from pass_helpers import kinds
from passes import registry
from passes.manager import PassError, PassManager
from passes.pipeline import LEVELS, pipeline, run_pipeline

registry._load_all()


def _small_ir():
    ir = popxl.Ir()
    with ir.main_graph:
        x = popxl.variable(np.ones(3, np.float32), name="x")
        ops.var_updates.accumulate_(x, ops.exp(x))
    return ir.core  # the passes work on the core program


def test_every_pass_module_registers_its_pass():
    registry._load_all()
    modules = {p.stem for p in Path(registry.__file__).parent.glob("*.py")} - set(registry.MACHINERY)
    assert modules <= set(registry.PASSES), "a module of passes/ that is no pass belongs in registry.MACHINERY"
    for name in registry.PASSES:
        assert registry.describe(name), f"pass {name} has no docstring"
    for level in LEVELS.values():
        assert all(p in registry.PASSES for p in level)


def test_unknown_pass_lists_the_known_ones():
    with pytest.raises(KeyError, match="unknown pass 'fuse'.*fuse_elementwise"):
        registry.get_pass("fuse")
    with pytest.raises(KeyError, match="unknown pass"):
        PassManager(["schedule", "fuse"])


def test_levels_grow_and_skip_is_checked():
    assert pipeline(0) == []
    assert set(pipeline(1)) < set(pipeline(2)) < set(pipeline(3))
    assert "fuse_horizontal" in pipeline(3) and "fuse_horizontal" not in pipeline(2)
    assert "inplace" not in pipeline(2, skip=("inplace",))
    with pytest.raises(ValueError, match="unknown pass.*'fusion'"):
        pipeline(2, skip=("fusion",))
    with pytest.raises(ValueError, match="level must be one of"):
        pipeline(4)


def test_records_name_changed_and_time():
    ir = custom_optimiser.build_ir()[0].core
    records = run_pipeline(ir, level=2, verify_each=True)
    assert [r.name for r in records] == pipeline(2)
    changed = {r.name for r in records if r.changed}
    assert {"fold_neg_into_scaled_add", "fuse_elementwise"} <= changed
    assert "memory_plan" not in changed  # analyses annotate but change nothing
    assert all(r.seconds >= 0 for r in records)


def test_stop_after_stops_there_and_must_be_in_the_pipeline():
    ir = custom_optimiser.build_ir()[0].core
    records = run_pipeline(ir, level=3, stop_after="fuse_elementwise")
    assert records[-1].name == "fuse_elementwise"
    assert kinds(ir.graphs["Adam_subgraph(0)"]) == ["FusedKernel"]
    with pytest.raises(ValueError, match="'fuse_horizontal' is not run at level 2"):
        run_pipeline(ir, level=2, stop_after="fuse_horizontal")


def test_dumps_before_and_after_a_pass():
    ir = custom_optimiser.build_ir()[0].core
    seen = []
    pm = PassManager(["schedule", "fold_neg_into_scaled_add", "dce"], dump_before={"fold_neg_into_scaled_add"},
                     dump_after={"dce"}, on_dump=seen.append)
    pm.run(ir)
    assert [(d.name, d.when) for d in pm.dumps] == [("fold_neg_into_scaled_add", "before"), ("dce", "after")]
    assert seen == pm.dumps
    assert "Neg." in pm.dumps[0].text and "Neg." not in pm.dumps[1].text


def test_a_pass_that_breaks_the_ir_is_named_with_its_history(monkeypatch):
    def breaker(ir):
        ir.main.ops.reverse()
        return True

    monkeypatch.setitem(registry.PASSES, "_break", breaker)
    with pytest.raises(PassError, match=r"pass '_break' broke the IR \(passes run before it: schedule, dce\)"):
        PassManager(["schedule", "dce", "_break"], verify_each=True).run(_small_ir())


def test_broken_storage_versions_are_caught_by_the_pass_invariants(monkeypatch):
    def skip_a_version(ir):
        acc = ir.main.ops[-1]
        acc.outputs[0].version += 1  # the in-place result no longer follows its input's version
        return True

    monkeypatch.setitem(registry.PASSES, "_skip", skip_a_version)
    with pytest.raises(PassError, match=r"(?s)pass '_skip' broke the IR.*Accumulate.*writes 'x'"):
        PassManager(["_skip"], verify_each=True).run(_small_ir())


def test_an_exception_in_a_pass_carries_the_history(monkeypatch):
    def crash(ir):
        raise ZeroDivisionError("boom")

    monkeypatch.setitem(registry.PASSES, "_crash", crash)
    with pytest.raises(ZeroDivisionError) as e:
        PassManager(["dce", "_crash"]).run(_small_ir())
    assert "while running pass '_crash' (passes run before it: dce)" in e.value.__notes__[0]


def test_invalid_input_is_blamed_on_no_pass():
    ir = _small_ir()
    ir.main.ops.reverse()
    with pytest.raises(PassError, match="already invalid before the first pass"):
        PassManager(["dce"], verify_each=True).run(ir)
