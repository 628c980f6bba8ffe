"""Caller-owned buffers ("external" values): a spec and no data in the Ir; every run binds an array.

Built through the core builder (compiler/ops/builder.py), as the optimizers of compiler/optim build
their kernels: saved and loaded, cloned, verified, and refused by everything that would have to
own their memory (a run without a binding, a Session, the Poplar and ONNX backends)."""
from __future__ import annotations

import numpy as np
import pytest

from compiler.driver import CompileOptions, compile, lower
from compiler.ir import DType, Ir, TensorSpec, VerificationError, verify
from compiler.ir.clone import clone
from compiler.ir.hashing import ir_digest
from compiler.ir.serialize import IRFormatError
from compiler.ops import OpError
from compiler.ops.builder import Builder, copy_


def _sgd(shape: tuple[int, ...] = (5,), dtype: DType = DType.float32) -> Ir:
    """param <- param - 0.5 * grad, both caller-owned."""
    b = Builder()
    p = b.main.external("param", shape, dtype)
    g = b.main.external("grad", shape, dtype)
    copy_(p, p - 0.5 * g)
    return b.ir


def test_an_external_has_a_spec_and_no_data():
    ir = _sgd()
    p, g = (ir.main.values[vid] for vid in ir.externals)
    assert (p.kind, p.name, p.spec) == ("external", "param", TensorSpec((5,), DType.float32))
    assert g.name == "grad" and ir.variables == {} and ir.buffer_ids() == ir.externals
    verify(ir)


@pytest.mark.parametrize("device", ["cpu", "interpreter"])
def test_a_run_updates_the_bound_arrays_in_place(device):
    exe = compile(_sgd(), CompileOptions(device=device))
    p, g = np.arange(5, dtype=np.float32), np.full(5, 2.0, np.float32)
    before = p.ctypes.data
    ids = exe.ir.externals
    exe.run({ids[0]: p, ids[1]: g}, {}, 1)
    np.testing.assert_array_equal(p, np.arange(5, dtype=np.float32) - 1.0)
    assert p.ctypes.data == before


@pytest.mark.parametrize("device", ["cpu", "interpreter"])
def test_a_run_without_a_binding_names_the_buffer(device):
    ir = _sgd()
    exe = compile(ir, CompileOptions(device=device))
    with pytest.raises(ValueError, match=r"no array bound to caller-owned buffer 'grad'"):
        exe.run({ir.externals[0]: np.zeros(5, np.float32)}, {}, 1)


def test_the_interpreter_checks_a_bound_arrays_spec():
    ir = _sgd()
    exe = compile(ir, CompileOptions(device="interpreter"))
    p = np.zeros(5, np.float32)
    with pytest.raises(ValueError, match=r"caller-owned buffer 'grad': expected float32\(5,\), got float64\(5,\)"):
        exe.run({ir.externals[0]: p, ir.externals[1]: np.zeros(5)}, {}, 1)


def test_a_bound_run_without_a_binding_names_the_buffer():
    ir = _sgd()
    exe = compile(ir, CompileOptions(device="cpu"))
    with pytest.raises(ValueError, match=r"no array bound to caller-owned buffer 'param'"):
        exe.bind({ir.externals[1]: np.zeros(5, np.float32)}, [])


def test_save_load_and_clone_keep_externals(tmp_path):
    ir = _sgd((2, 3), DType.float16)
    ir.save(tmp_path / "k.json")
    back = Ir.load(tmp_path / "k.json")
    assert back.externals == ir.externals and back.variables == {}
    assert [back.main.values[v].kind for v in back.externals] == ["external", "external"]
    assert back.main.values[back.externals[0]].spec == TensorSpec((2, 3), DType.float16)
    c = clone(ir)
    assert c.externals == ir.externals and c.externals is not ir.externals
    assert c.main.values[c.externals[0]].kind == "external"
    p, g = np.ones((2, 3), np.float16), np.ones((2, 3), np.float16)
    compile(back, CompileOptions(device="cpu")).run(dict(zip(back.externals, (p, g))), {}, 1)
    np.testing.assert_array_equal(p, np.full((2, 3), 0.5, np.float16))


def test_a_saved_external_that_is_not_a_value_is_a_format_error(tmp_path):
    ir = _sgd()
    ir.save(tmp_path / "k.json")
    text = (tmp_path / "k.json").read_text().replace('"externals": [1, 2]', '"externals": [1, 99]')
    assert '"externals": [1, 99]' in text
    (tmp_path / "bad.json").write_text(text)
    with pytest.raises(IRFormatError, match=r"externals"):
        Ir.load(tmp_path / "bad.json")


def test_verify_knows_externals():
    ir = _sgd()
    ir.externals.pop()  # a caller-owned value nobody lists
    with pytest.raises(VerificationError, match=r"caller-owned buffer 'grad' .* not a main-graph value listed"):
        verify(ir)
    ir = _sgd()
    ir.externals.append(ir.externals[0])
    with pytest.raises(VerificationError, match=r"listed twice"):
        verify(ir)
    ir = _sgd()
    c = ir.add_constant(ir.main, np.zeros(5, np.float32), "c")
    ir.externals.append(c.id)
    with pytest.raises(VerificationError, match=r"listed as a caller-owned buffer but is a value of kind 'constant'"):
        verify(ir)


def test_the_cache_key_sees_the_externals_specs():
    assert ir_digest(_sgd((5,))) != ir_digest(_sgd((6,)))
    assert ir_digest(_sgd((5,))) == ir_digest(_sgd((5,)))


def test_owning_front_ends_and_backends_refuse_externals():
    from compiler import popxl

    ir = _sgd()
    with pytest.raises(ValueError, match=r"Session: this Ir has caller-owned buffers \['param', 'grad'\]"):
        popxl.Session(ir, "interpreter")
    for backend in ("poplar", "onnx"):
        with pytest.raises(ValueError, match=rf"the {backend} backend .* caller-owned buffers \['param', 'grad'\]"):
            lower(ir, backend)


def test_the_builder_type_checks_and_names_inputs():
    b = Builder()
    x = b.main.external("x", (3,), DType.float32)
    y = b.main.external("y", (3,), DType.float16)
    with pytest.raises(OpError, match=r"inputs: a='x' .*float32.* b='y' .*float16"):
        x + y
    sub = b.subgraph("f")
    with pytest.raises(ValueError, match=r"'x' belongs to graph 'main'.*pass it in as a graph input"):
        sub.emit("Neg", {"x": x})
    with pytest.raises(ValueError, match=r"caller-owned buffers belong to the main graph"):
        sub.external("z", (3,), DType.float32)
    with pytest.raises(ValueError, match=r"does not fit float16"):
        y * 1e6


def test_reads_through_a_handle_see_the_newest_version():
    b = Builder()
    p = b.main.external("p", (2,), DType.float32)
    copy_(p, p + 1.0)
    q = p * 2.0  # reads the updated p
    mul = b.ir.main.ops[-1]
    assert mul.inputs[0] is not p.value and mul.inputs[0].storage == p.value.storage
    assert mul.inputs[0].version == 1 and mul.handles == (p.value, mul.inputs[1])
    assert q.name == "mul_out"


def test_a_subgraph_call_writes_by_reference_inputs_back():
    b = Builder()
    p = b.main.external("p", (4,), DType.float32)
    g = b.main.external("g", (4,), DType.float32)
    sub = b.subgraph("step")
    sp, sg = sub.input("p", p.spec, by_ref=True), sub.input("g", g.spec)
    copy_(sp, sp - sg)
    b.main.call(sub, [p, g])
    b.main.call(sub, [p, g])
    arrays = [np.full(4, 10.0, np.float32), np.ones(4, np.float32)]
    compile(b.ir, CompileOptions(device="cpu")).run(dict(zip(b.ir.externals, arrays)), {}, 1)
    np.testing.assert_array_equal(arrays[0], np.full(4, 8.0, np.float32))
