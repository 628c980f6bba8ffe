"""shard_weight_update on the IR: what it rewrites, what it refuses and why, and the layouts it records.
Running the rewritten programs (bit-identical results, checkpoints, MPI): tests/dataparallel/test_shard*.py."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from compiler import popxl
from compiler.driver import CompileOptions, optimise, program_of
from compiler.ir import Ir, print_schedule
from compiler.ops.collectives import ALL_REDUCE
from passes.pipeline import pipeline
from passes.shard_weight_update import format_refusals

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "dataparallel"))
from shard_programs import SHAPES, program  # noqa: E402

ON = CompileOptions(shard_weight_update=True, verify_each=True)


def kinds(ir: popxl.Ir | Ir) -> list[str]:
    return [op.kind for op in program_of(ir).main.ops]


def test_off_by_default_and_placed_after_inline():
    assert "shard_weight_update" not in pipeline(2)
    names = pipeline(2, enable=("shard_weight_update",))
    assert names[names.index("inline") + 1] == "shard_weight_update"
    with pytest.raises(ValueError, match="opt-in passes are shard_weight_update"):
        pipeline(2, enable=("fuse_elementwise",))


def test_one_replica_is_left_alone():
    ir, _ = program(1)
    assert "ReplicatedReduceScatter" not in kinds(optimise(ir, ON))


@pytest.mark.parametrize("replicas", [2, 3, 4])
def test_all_reduce_becomes_reduce_scatter_update_all_gather(replicas):
    ir, h = program(replicas, "adam", state_dtype=popxl.float16)
    out = optimise(ir, ON)
    ks = kinds(out)
    assert not any(k in ALL_REDUCE for k in ks)
    # the (300, 80) gradient alone, the four small ones packed into one collective each way
    assert ks.count("ReplicatedReduceScatter") == 2 and ks.count("ReplicatedAllGather") == 2
    text = print_schedule(out.main)
    assert "ReplicatedReduceScatter" in text and "ReplicatedAllGather" in text
    assert format_refusals(out) == ""
    # state: Adam's two moments per weight, now (k,) shards; the step counters stay whole scalars
    by_name = {out.main.values[vid].name: (vid, layout) for vid, layout in out.sharded_variables.items()}
    assert len(by_name) == 2 * len(SHAPES)
    for shape, w in zip(SHAPES, h["weights"]):
        for moment, dtype in (("first_order", np.float16), ("second_order", np.float32)):
            vid, layout = by_name[f"{w.name}.adam.{moment}"]
            k = -(-int(np.prod(shape)) // replicas)
            assert layout.shape == shape and layout.replicas == replicas and layout.shard == k
            assert out.main.values[vid].shape == (k,) and out.variables[vid].shape == (k,)
            assert out.variables[vid].dtype == dtype
    steps = [v for v in out.main.values.values() if v.kind == "variable" and v.name.endswith(".step")]
    assert len(steps) == len(SHAPES) and all(v.shape == () and v.id not in out.sharded_variables for v in steps)
    # the user's Ir is untouched
    assert "ReplicatedReduceScatter" not in kinds(ir) and not ir.core.sharded_variables


def test_weights_nobody_else_reads_are_sharded_too():
    ir, h = program(2, "sgd", read_weights=False)
    out = optimise(ir, ON)
    sharded = {out.main.values[vid].name for vid in out.sharded_variables}
    assert {w.name for w in h["weights"]} <= sharded
    assert "ReplicatedAllGather" not in kinds(out)  # nothing needs the whole weight during the step


def test_lamb_is_refused_with_the_reason():
    ir, _ = program(2, "lamb")
    out = optimise(ir, ON)
    assert "ReplicatedReduceScatter" not in kinds(out) and not out.sharded_variables
    why = out.main.info["shard_refusals"]
    assert len(why) == len(SHAPES)
    assert all("LambSquare" in w and "needs the whole tensor" in w for w in why), why


def _single(build, replicas: int = 2) -> popxl.Ir:
    ir = popxl.Ir(replication=replicas)
    with ir.main_graph, popxl.in_sequence(True):
        w = popxl.variable(np.ones((4, 3), np.float32), name="w")
        popxl.ops.host_store(popxl.d2h_stream((4, 3), popxl.float32, "w_out"), w)
        g = popxl.ops.host_load(popxl.h2d_stream((4, 3), popxl.float32, "g"), "g")
        build(ir, w, g)
    return ir


def _refusal(build) -> str:
    out = optimise(_single(build), ON)
    assert "ReplicatedReduceScatter" not in kinds(out)
    (why,) = out.main.info["shard_refusals"]
    return why


def test_refusals_name_the_cause():
    ops = popxl.ops

    def clipped(ir, w, g):  # a global norm of the reduced gradient
        ops.collectives.replicated_all_reduce_(g, op="mean")
        norm = ops.lamb_square(g)
        ops.scaled_add_(w, g, b=-0.1 / norm)

    assert "reads the reduced gradient" in _refusal(clipped)

    def broadcast(ir, w, g):
        scale = popxl.variable(np.full((3,), 0.5, np.float32), name="per_column")
        ops.collectives.replicated_all_reduce_(g, op="mean")
        ops.scaled_add_(w, g * scale, b=-0.1)

    assert "broadcast" in _refusal(broadcast)

    def maximum(ir, w, g):
        ops.collectives.replicated_all_reduce_(g, op="max")
        ops.scaled_add_(w, g, b=-0.1)

    assert "op='max'" in _refusal(maximum)

    def no_update(ir, w, g):
        r = ops.collectives.replicated_all_reduce(g, op="add")
        popxl.ops.host_store(popxl.d2h_stream((4, 3), popxl.float32, "r_out"), r * 2.0)

    assert "needs the whole tensor" in _refusal(no_update)


def test_the_tutorial_adam_graphs_are_inlined_and_sharded():
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
    from data_parallel import train_program

    ir = train_program(2, 2, 4)[0]
    out = optimise(ir, ON)
    assert not any(op.kind == "Call" and "Adam" in op.called.id for op in out.main.ops)
    assert not any(k in ALL_REDUCE for k in kinds(out))
    assert len(out.sharded_variables) == 16  # two moments of each of the 8 parameters
    notes = out.main.info["shard_notes"]
    assert len(notes) == 8 and all("keeps this replica's own gradient" in n for n in notes)


def test_interleaved_updates_are_not_packed():
    """all_reduce(g0); update(w0); all_reduce(g1); ... in sequence: a packed collective would have to run
    before update(w0) and after all_reduce(g1)'s input is loaded, against the order asked for."""
    out = optimise(program(2, "sgd", interleaved=True)[0], ON)
    assert kinds(out).count("ReplicatedReduceScatter") == len(SHAPES)
    assert kinds(out).count("ReplicatedAllGather") == len(SHAPES)


def test_report_shows_state_bytes_per_replica():
    from tools.report import shard_report

    ir, _ = program(4, "adam", shapes=[(7,), (3, 3)])
    lines = "\n".join(shard_report("p", ir))
    full = (7 + 9) * 4 * 2  # two float32 moments
    mine = (2 + 3) * 4 * 2  # ceil(7/4) + ceil(9/4) elements each
    assert f"{full:10d} -> {mine:10d}" in lines and "4 variables sharded" in lines, lines
    lamb = "\n".join(shard_report("p", program(2, "lamb", shapes=[(7,)])[0]))
    assert "left unsharded             1" in lamb and "LambSquare" in lamb


def test_print_schedule_cli_shows_the_rewrite(tmp_path, capsys):
    from tools import print_schedule

    ir, _ = program(2, "sgd", shapes=[(7,), (300, 80)])
    ir.core.save(tmp_path / "p.json")
    assert print_schedule.main([str(tmp_path / "p.json"), "--graph", "main", "--pipeline", "2"]) == 0
    plain = capsys.readouterr().out
    assert "ReplicatedAllReduce" in plain and "ReplicatedReduceScatter" not in plain
    argv = [str(tmp_path / "p.json"), "--graph", "main", "--pipeline", "2", "--shard-weight-update"]
    assert print_schedule.main(argv) == 0
    text = capsys.readouterr().out
    assert "ReplicatedAllReduce" not in text
    assert text.count("ReplicatedReduceScatter") == 2 and text.count("ReplicatedAllGather") == 2, text
    assert print_schedule.main([str(tmp_path / "p.json"), "--graph", "main", "--after", "shard_weight_update"]) == 0
    assert "ReplicatedReduceScatter" in capsys.readouterr().out
