"""Programs from the PopXL tutorials that several test folders build (tests/ is on the import path)."""
from __future__ import annotations

import numpy as np

import custom_optimiser
from compiler import popxl

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
