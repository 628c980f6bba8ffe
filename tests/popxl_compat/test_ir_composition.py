"""popxl.Ir holds its program as `ir.core` (a compiler.ir.Ir): PopXL's Ir API reads and writes the core,
and the driver, the Session and the tools take either kind (driver.program_of)."""
from __future__ import annotations

import gc

import numpy as np
import pytest

from compiler import popxl
from compiler.driver import CompileOptions, compile, program_of
from compiler.ir import Ir
from compiler.popxl import ops
from compiler.popxl.tensor import wrap


def _program() -> tuple[popxl.Ir, object, object, popxl.Tensor]:
    ir = popxl.Ir(replication=1)
    with ir.main_graph:
        h = popxl.h2d_stream((3,), popxl.float32, name="x")
        w = popxl.variable(np.arange(3, dtype=np.float32), name="w")
        ops.var_updates.accumulate_(w, ops.host_load(h, "x"))
        o = popxl.d2h_stream((3,), popxl.float32, name="o")
        ops.host_store(o, w * 2.0)
    return ir, h, o, w


def test_popxl_settings_are_the_core_programs():
    ir, *_ = _program()
    assert isinstance(ir.core, Ir) and not isinstance(ir, Ir)
    ir.num_host_transfers = 4
    ir.replication_factor = 2
    assert (ir.core.num_host_transfers, ir.core.replication_factor) == (4, 2)
    ir.core.num_host_transfers = 1
    assert ir.num_host_transfers == 1
    assert {s.name for s in ir.get_all_h2d_streams()} == {"x"} and set(ir.stream_handles) == {"x", "o"}
    # a core value's Tensor handle comes from the popxl.Ir that holds the core
    (vid,) = ir.core.variables
    t = wrap(ir.core.main.values[vid])
    assert t.name == "w" and t.graph is ir.main_graph and t.ir is ir


def test_session_and_driver_take_either_kind():
    x = np.ones(3, np.float32)
    ir, h, o, w = _program()
    with popxl.Session(ir, "interpreter") as s:
        by_handle = s.run({h: x})
        assert s.ir is ir  # PopXL's session.ir is the Ir it was given
    assert list(by_handle) == [o]
    # the core alone (as a loaded file would be): results keyed by stream name; the same numbers
    ir2, h2, _, _ = _program()
    with popxl.Session(ir2.core, "interpreter") as s:
        by_name = s.run({h2: x})
    assert list(by_name) == ["o"] and np.array_equal(by_name["o"], by_handle[o])
    a, b = _program()[0], _program()[0]
    va, vb = dict(a.core.variables), dict(b.core.variables)
    feeds = {"x": x[None]}
    opts = CompileOptions(device="interpreter")
    assert np.array_equal(compile(a, opts).run(va, feeds, 1)["o"], compile(b.core, opts).run(vb, feeds, 1)["o"])


def test_a_core_ir_without_its_popxl_ir_has_no_handles():
    core = popxl.Ir().core
    gc.collect()  # the popxl.Ir is gone; its core lives on and belongs to no front end
    with pytest.raises(TypeError, match="not built with compiler.popxl"):
        popxl.Ir.wrapper_of(core.main)
    assert program_of(core) is core
    with pytest.raises(TypeError, match="got int"):
        compile(3)
