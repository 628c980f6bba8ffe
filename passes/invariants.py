"""Storage and kernel invariants the passes rely on, beyond compiler.ir.verify (checked with verify_each).

- in-place effects: input i in `modifies` has a new version (same storage, version + 1); every other
  result is version 0 of a storage no other value starts;
- every storage's versions are 0..n (or k..n for an input's storage), one value each, so the
  read-before-overwrite checks see every writer;
- FusedKernel / MultiKernel attributes agree with the op's inputs and outputs;
- a memory plan never gives two storages that are live at the same time overlapping bytes.
"""
from __future__ import annotations

from collections import defaultdict
import numpy as np

from compiler.ir import Graph, Ir, Op
from compiler.ir.value import DEFINED_KINDS
from compiler.ops.matmul_epilogue import expand

from .alias_analysis import AliasInfo


def _effects(where: str, op: Op) -> list[str]:
    out = []
    new_versions = set()
    for i in op.modifies:
        try:
            nv = op.new_version(i)
        except KeyError:
            out.append(f"{where}: {op.label} modifies input {i} but has no new version of it")
            continue
        new_versions.add(nv.id)
        x = op.inputs[i]
        if nv.storage != x.storage or nv.version != x.version + 1:
            out.append(f"{where}: {op.label} writes {x.name!r} (s{x.storage}v{x.version}) as s{nv.storage}v{nv.version}")
    for v in op.results:
        if v.id not in new_versions and v.version != 0:
            out.append(f"{where}: {op.label} result {v.name!r} has version {v.version} but overwrites nothing")
    return out


def _versions(where: str, g: Graph) -> list[str]:
    by_storage: dict[int, list[int]] = defaultdict(list)
    for v in list(g.inputs) + [v for v in g.values.values() if v.kind in DEFINED_KINDS]:
        by_storage[v.storage].append(v.version)
    for op in g.ops:
        for v in op.results:
            by_storage[v.storage].append(v.version)
    out = []
    for s, vers in by_storage.items():
        vs = sorted(vers)
        if vs != list(range(vs[0], vs[0] + len(vs))):
            out.append(f"{where}: storage s{s} has versions {vs}; they must be distinct and contiguous")
    return out


def _kernel(where: str, op: Op) -> list[str]:
    a = op.attrs
    e = a["expr"]
    out = []
    if op.kind == "FusedKernel":
        groups = [(list(op.inputs), list(op.outputs), tuple(a["shape"]))]
    else:
        n, m = a["arity"], len(e.outputs)
        groups = [(op.inputs[k * n:(k + 1) * n], op.outputs[k * m:(k + 1) * m], tuple(s))
                  for k, s in enumerate(a["shapes"])]
        if len(op.inputs) != n * len(groups) or len(op.outputs) != m * len(groups):
            return [f"{where}: {op.label} has {len(op.inputs)} inputs / {len(op.outputs)} outputs for "
                    f"{len(groups)} groups of {n} / {m}"]
    if [tuple(s) for s, _ in a["out_specs"]] != [v.shape for v in op.outputs]:
        out.append(f"{where}: {op.label} out_specs do not match its outputs")
    for ins, outs, shape in groups:
        if len(e.outputs) != len(outs):
            out.append(f"{where}: {op.label} expr has {len(e.outputs)} outputs for {len(outs)} results")
        for node in e.nodes:
            if node.prim.value == "input" and (node.attr >= len(ins) or ins[node.attr].dtype != node.dtype):
                out.append(f"{where}: {op.label} expr input {node.attr} does not match the op's inputs")
        for v in list(ins) + list(outs):
            if v.spec.nelms > 1 and np.broadcast_shapes(v.shape, shape) != shape:
                out.append(f"{where}: {op.label} tensor {v.name!r} {v.shape} does not broadcast to {shape}")
        for v in outs:
            if v.spec.nelms > 1 and v.shape != shape:
                out.append(f"{where}: {op.label} result {v.name!r} {v.shape} does not cover the loop {shape}")
    return out


def _memory_plan(where: str, g: Graph) -> list[str]:
    plan = g.memory_plan
    if plan is None:
        return []
    info = AliasInfo(g)
    live: dict[int, tuple[int, int]] = {}
    for s in plan.offsets:
        vals = info.values_of(s)
        if not vals or vals[0].producer is None:
            return [f"{where}: the memory plan places s{s}, which no op of the graph creates"]
        live[s] = (info.position[vals[0].producer], info.last_access(s))
    placed = sorted(live)
    out = []
    for i, s in enumerate(placed):
        nb_s = info.values_of(s)[0].spec.nbytes
        for t in placed[i + 1:]:
            nb_t = info.values_of(t)[0].spec.nbytes
            (a0, a1), (b0, b1) = live[s], live[t]
            if a1 < b0 or b1 < a0:
                continue
            o_s, o_t = plan.offsets[s], plan.offsets[t]
            if o_s < o_t + nb_t and o_t < o_s + nb_s:
                out.append(f"{where}: the memory plan overlaps s{s} and s{t}, which are live together")
    if max((plan.offsets[s] + info.values_of(s)[0].spec.nbytes for s in placed), default=0) > plan.peak_bytes:
        out.append(f"{where}: the memory plan places bytes beyond its peak_bytes")
    return out


def problems(ir: Ir) -> list[str]:
    out: list[str] = []
    for g in ir.graphs.values():
        where = f"graph {g.id!r}" if g.id else "main graph"
        for op in g.ops:
            out += _effects(where, op)
            if op.kind in ("FusedKernel", "MultiKernel"):
                out += _kernel(where, op)
            elif op.kind == "MatMulEpilogue":  # prologue kernels, then a FusedKernel over the matmul's result
                out += [x for k in expand(op) if k.kind == "FusedKernel" for x in _kernel(where, k)]
        out += _versions(where, g)
        out += _memory_plan(where, g)
    return out
