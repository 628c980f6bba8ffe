"""When native code goes parallel: sizes below which a parallel region costs more than it saves.

A region (parallel.parallel: GOMP_parallel waking libgomp's waiting workers, plus the join) costs
REGION_US microseconds, measured on this project's 2-core machine with

    .venv/bin/python benchmarks/parallel_region.py

A piece of work is worth splitting across two threads when half of its one-thread time exceeds that
cost several times over; the constants below put that point at about 4x the region cost, using the
one-thread speeds measured by the same command (streaming elementwise elements/us, matmul MACs/us).
"""
from __future__ import annotations

REGION_US = 5.0  # placeholder until measured
# elementwise / reduction elements; MultiKernel groups' elements in all; graph calls' input elements
PARALLEL_MIN_ELEMENTS = 1 << 16
PARALLEL_MIN_GROUP_ELEMENTS = 1 << 16
PARALLEL_MIN_CALL_ELEMENTS = 1 << 16
# float32-equivalent multiply-adds of a matmul, and the least work of one matmul tile
PARALLEL_MIN_MACS = 1 << 18
TILE_MIN_MACS = 1 << 16
# a reduction over its outermost dimension folds into at most this many partial rows
MAX_PARTIALS = 64
