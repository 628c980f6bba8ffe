"""What the default pipeline does to the example programs: ops, graphs and workspace bytes, before and after;
and what shard_weight_update does to the data-parallel tutorial: optimizer-state bytes per replica.

  python -m tools.report
"""
from __future__ import annotations

import sys
from pathlib import Path

from compiler.driver import HoldsIr, program_of
from compiler.ir import Ir
from compiler.ir.clone import clone
from passes.pipeline import run_pipeline

ROOT = Path(__file__).resolve().parents[1]


def _ops(ir: Ir) -> int:
    return sum(len(g.ops) for g in ir.reachable_graphs())


def _graph_ops(ir: Ir) -> dict[str, int]:
    return {g.id or "main": len(g.ops) for g in ir.graphs.values()}


def _naive_bytes(ir: Ir) -> int:
    return sum(v.spec.nbytes for g in ir.graphs.values() for op in g.ops for v in op.results if v.version == 0)


# the passes that fuse across the matmul boundary: the report shows the peak with them switched off too
EPILOGUE_PASSES = ("inline_weight_updates", "fuse_matmul_epilogue", "fuse_matmul_prologue")


def peak_bytes(ir: Ir) -> int:
    """The memory plans' peak bytes, summed over the graphs."""
    return sum(g.memory_plan.peak_bytes for g in ir.graphs.values() if g.memory_plan is not None)


def report(name: str, ir: Ir | HoldsIr) -> list[str]:
    """Ops, graphs and temporary bytes of `ir` (a core Ir or a popxl.Ir) before and after the level-2 pipeline."""
    ir = program_of(ir)
    after = clone(ir)
    run_pipeline(after, level=2)
    plan_peak = peak_bytes(after)
    off = clone(ir)
    run_pipeline(off, level=2, skip=EPILOGUE_PASSES)
    fused = sum(op.kind == "FusedKernel" for g in after.graphs.values() for op in g.ops)
    return [
        f"{name}:",
        f"  ops (reachable graphs)      {_ops(ir):6d} -> {_ops(after):6d}   ({fused} fused kernels)",
        f"  graphs                      {len(ir.graphs):6d} -> {len(after.graphs):6d}",
        f"  temporaries (bytes)         {_naive_bytes(ir):10d} -> {plan_peak:10d} (memory plan peak, after in-placing)",
        f"  epilogue passes off -> on   {peak_bytes(off):10d} -> {plan_peak:10d} (peak; {', '.join(EPILOGUE_PASSES)})",
        f"  ops per graph after         {_graph_ops(after)}",
    ]


def shard_report(name: str, ir: Ir | HoldsIr) -> list[str]:
    """Optimizer-state bytes each replica holds without and with shard_weight_update (the state being the
    variables the pass shards), and what it refused."""
    ir = program_of(ir)
    after = clone(ir)
    run_pipeline(after, level=2, enable=("shard_weight_update",))
    n = ir.replication_factor
    full = sum(lay.numel * after.variables[vid].itemsize for vid, lay in after.sharded_variables.items())
    mine = sum(after.variables[vid].nbytes for vid in after.sharded_variables)
    refused = after.main.info.get("shard_refusals", [])
    return [
        f"{name}, {n} replicas, shard_weight_update:",
        f"  optimizer state per replica (bytes) {full:10d} -> {mine:10d}   ({len(after.sharded_variables)} variables "
        f"sharded; 1/{n} = {full / n:.0f} + padding)",
        f"  updates left unsharded        {len(refused):6d}" + "".join(f"\n    {r}" for r in refused),
    ]


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(ROOT / "examples"))
    import custom_optimiser

    lines = report("tutorial Adam (examples/custom_optimiser.py)", custom_optimiser.build_ir()[0])
    import mnist_adam

    lines += report("MNIST training step, batch 8 (examples/mnist_adam.py)", mnist_adam.build_ir()[0])
    lines += report("MNIST training step, batch 128", mnist_adam.train_ir(128)[0])
    import data_parallel

    for replicas in (2, 4):
        lines += shard_report("data-parallel tutorial (examples/data_parallel.py)",
                              data_parallel.train_program(replicas, 2, 8)[0])
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
