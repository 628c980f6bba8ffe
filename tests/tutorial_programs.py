"""Programs from the PopXL tutorials that several test folders build (tests/ is on the import path)."""
from __future__ import annotations

import numpy as np

import custom_optimiser
from compiler import popxl

# the tutorial's second Adam graph (a Tensor learning rate), as PopXL's print_schedule shows it
TUTORIAL_TENSOR_LR_SCHEDULE = """\
Graph : Adam_subgraph(1)
  (%1, %2, %3, first_order=%4, second_order=%5, step=%6) -> () {
    Accumulate.104 (%4 [(2, 2) float16], %2 [(2, 2) float32]) -> (%7 [(2, 2) float16])
    Accumulate.105 (%5 [(2, 2) float32], %2 [(2, 2) float32]) -> (%8 [(2, 2) float32])
    AdamUpdater.106 (%4 [(2, 2) float16], %5 [(2, 2) float32], %6 [() float32]) -> (%9 [(2, 2) float16])
    Neg.107 (%3 [() float32]) -> (%10 [() float32])
    ScaledAddLhsInplace.108 (%1 [(2, 2) float32], %9 [(2, 2) float16], %10 [() float32]) -> (%11 [(2, 2) float32])
  }"""

MNIST_SHAPES = [(784, 512), (512,), (512, 512), (512,), (512, 512), (512,), (512, 10), (10,)]


def adam_per_variable(shapes=MNIST_SHAPES, lr=1e-3) -> popxl.Ir:
    """The MNIST tutorial's optimiser step: one Adam graph per variable, created without cache=True
    (random weights and gradients, seed 0)."""
    ir = popxl.Ir()
    rng = np.random.default_rng(0)
    opt = custom_optimiser.Adam(cache=False)
    with ir.main_graph:
        for i, shape in enumerate(shapes):
            var = popxl.variable(rng.standard_normal(shape).astype(np.float32), name=f"w{i}")
            grad = popxl.variable(rng.standard_normal(shape).astype(np.float32), name=f"g{i}")
            facts, graph = opt.create_graph(var, var.spec, lr=lr, weight_decay=0.0, bias_correction=False)
            graph.bind(facts.init()).call(var, grad)
    return ir
