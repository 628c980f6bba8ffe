"""Weight-update sharding across data-parallel replicas (ZeRO-1, Xu et al. 2020), as a pass.

before -> after (main graph, replication N > 1):
    r = all_reduce(g); <elementwise update of weight w and state m, reading r>
 -> rs = reduce_scatter(g); <the same update on this replica's (k,) slice of w, m stored as (k,) shards>;
    w <- all_gather(updated slice)                                           k = ceil(numel(w) / N)

Opt-in: `CompileOptions(shard_weight_update=True)` adds it to the pipeline after `inline`. Calls of
elementwise graphs that read a reduced gradient (the tutorial's cached Adam graphs) are inlined first,
whatever their size. What qualifies and why anything is refused: sharding/analysis.py; the rewrite:
sharding/rewrite.py; small tensors' collectives packed together: sharding/pack.py. Refusals are
appended to `ir.main.info["shard_refusals"]` (like fuse_elementwise's), observable side effects to
`ir.main.info["shard_notes"]`; the layouts of sharded variables go to `ir.sharded_variables`.
"""
from __future__ import annotations

from compiler.ir import Graph, Ir
from compiler.ops.collectives import ALL_REDUCE

from .dce import remove_unused_graphs
from .inline import inline_call, refusal
from .registry import register
from .sharding.analysis import Finder
from .sharding.pack import PackedCollectives
from .sharding.rewrite import Edit, rewrite


def inline_updates(ir: Ir, g: Graph) -> bool:
    """Inline the calls of elementwise graphs that take an all-reduced value (the optimizer's update)."""
    reduced = {a.outputs[0].id for a in g.ops if a.kind in ALL_REDUCE}
    calls = [op for op in g.ops if op.kind == "Call" and op.called is not None
             and any(v.id in reduced for v in op.inputs)]
    changed = False
    for call in calls:
        if refusal(call, max_ops=None) is None:
            inline_call(ir, g, call)
            changed = True
    if changed:
        remove_unused_graphs(ir)
    return changed


@register("shard_weight_update")
def run(ir: Ir) -> bool:
    """Shard the optimizer update over replicas: all_reduce + update -> reduce_scatter + shard update + all_gather."""
    g = ir.main
    if ir.replication_factor <= 1:
        return False
    changed = inline_updates(ir, g)
    finder = Finder(ir, g)
    updates = finder.find()
    g.info["shard_refusals"] = list(finder.refusals)
    g.info["shard_notes"] = [n for u in updates for n in u.notes]
    if updates:
        rewrite(ir, g, updates, PackedCollectives(ir, g, Edit()))
    return changed or bool(updates)


def format_refusals(ir: Ir) -> str:
    """Every recorded refusal, one per line."""
    return "\n".join(ir.main.info.get("shard_refusals", []))
