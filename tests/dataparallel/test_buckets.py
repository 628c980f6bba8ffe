"""Small tensors' all-reduces share one collective call; large ones run in place, each on its own."""
from __future__ import annotations

import numpy as np

from compiler import popxl
from compiler.popxl import ops

R = 2
SHAPES = [(3,), (40, 5), (7,), (256, 128), (1,)]  # (256, 128) float32 = 128 KiB: above the bucket size


def test_small_all_reduces_are_bucketed_into_one_call():
    rng = np.random.default_rng(0)
    data = [rng.standard_normal((R, *s)).astype(np.float32) for s in SHAPES]
    ir = popxl.Ir(replication=R)
    with ir.main_graph:
        xs = [popxl.variable(d, name=f"x{k}", replica_grouping=ir.replica_grouping(group_size=1))
              for k, d in enumerate(data)]
        with popxl.in_sequence(True):
            for x in xs:
                ops.collectives.replicated_all_reduce_(x, op="mean")
    sess = popxl.Session(ir, "cpu")
    with sess:
        sess.run()
    for x, d in zip(xs, data):
        got = sess.get_tensor_data(x)
        np.testing.assert_array_equal(got, np.broadcast_to((d[0] + d[1]) / np.float32(2), d.shape))
    # four small tensors in one call, the large one alone
    assert sess._exe.rendezvous.hooks.calls == 2
