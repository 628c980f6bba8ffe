"""The JIT refuses an object that needs a symbol nobody provides, instead of binding it to address 0."""
from __future__ import annotations

import llvmlite.binding as llvm
import pytest
from llvmlite import ir

from compiler.backends.llvm import target
from runtime.elf_symbols import ElfError, symbols
from runtime.loader import load_object


def _object(callee: str) -> bytes:
    m = ir.Module("t")
    f32 = ir.FloatType()
    ext = ir.Function(m, ir.FunctionType(f32, [f32]), callee)
    fn = ir.Function(m, ir.FunctionType(f32, [f32]), "entry")
    b = ir.IRBuilder(fn.append_basic_block())
    b.ret(b.call(ext, [fn.args[0]]))
    target.init()
    tm = target.target_machine()
    mod = llvm.parse_assembly(str(m))
    mod.triple, mod.data_layout = tm.triple, str(tm.target_data)
    return tm.emit_object(mod)


def test_symbols_of_an_object():
    s = symbols(_object("expf"))
    assert "entry" in s.defined and s.needed == {"expf"}


def test_a_symbol_nobody_provides_is_refused_before_linking():
    with pytest.raises(RuntimeError, match=r"calls \['optc_no_such_helper'\] which nothing in this process"):
        load_object(_object("optc_no_such_helper"), "entry")


def test_a_symbol_the_process_provides_links():
    addr, _engine = load_object(_object("expf"), "entry")
    assert addr


def test_a_symbol_another_object_defines_links():
    m = ir.Module("helper")
    f32 = ir.FloatType()
    fn = ir.Function(m, ir.FunctionType(f32, [f32]), "optc_helper_here")
    ir.IRBuilder(fn.append_basic_block()).ret(fn.args[0])
    tm = target.target_machine()
    mod = llvm.parse_assembly(str(m))
    mod.triple, mod.data_layout = tm.triple, str(tm.target_data)
    addr, _engine = load_object(_object("optc_helper_here"), "entry", (tm.emit_object(mod),))
    assert addr


@pytest.mark.parametrize("cut", [3, 40, 70, -100])
def test_damaged_objects_are_refused_by_the_reader(cut):
    obj = _object("expf")
    with pytest.raises(ElfError):
        symbols(obj[:cut])  # a cut header, or section headers cut off the end
