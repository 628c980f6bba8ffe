"""The import direction of DESIGN.md, checked by parsing every module's imports."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# layer prefix -> prefixes of ours it may import (besides itself). Every module of ours is in a layer.
FRONT_ENDS = ("compiler.popxl", "compiler.addons", "compiler.optim")
ALLOWED: dict[str, tuple[str, ...]] = {
    "compiler": ("compiler.version",),  # the bare package: front ends and driver load lazily
    "compiler.version": (),
    "compiler.options": (),
    "compiler.ir": (),
    "compiler.ops": ("compiler.ir",),
    "compiler.autodiff": ("compiler.ir", "compiler.ops"),
    "compiler.data": (),
    "compiler.popxl": ("compiler.ir", "compiler.ops", "compiler.autodiff", "compiler.options", "compiler.driver"),
    "compiler.addons": ("compiler.ir", "compiler.ops", "compiler.autodiff", "compiler.popxl"),
    # the optimizers build core IR through compiler/ops/builder.py, never through PopXL's user API
    "compiler.optim": ("compiler.ir", "compiler.ops", "compiler.autodiff", "compiler.options", "compiler.driver"),
    "passes": ("compiler.ir", "compiler.ops"),
    "compiler.backends": ("compiler.ir", "compiler.ops", "compiler.options", "compiler.version", "runtime"),
    "runtime": ("compiler.ir", "compiler.ops"),
    "compiler.driver": ("compiler.ir", "compiler.ops", "compiler.options", "passes", "compiler.backends", "runtime"),
    # the random-program generator and differential harness: builds programs like a user, runs them
    "tools.fuzz": ("compiler.ir", "compiler.ops", "compiler.autodiff", "compiler.options", "compiler.driver",
                         "passes", *FRONT_ENDS),
    # command-line tools (print_schedule, viz, compile, report, fuzz) may use everything
    "tools": ("compiler", "passes", "runtime", "tools.fuzz"),
}
OURS = ("compiler", "passes", "runtime", "tools")


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, mod: str) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    out: set[str] = set()
    pkg = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")
                base = base[: len(base) - (node.level - 1)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            for a in node.names:  # `from compiler import popxl` imports compiler.popxl, not compiler
                sub = f"{name}.{a.name}"
                out.add(sub if _is_module(sub) else name)
    return {i for i in out if i.split(".")[0] in OURS}


def _layer(mod: str) -> str | None:
    best = None
    for layer in ALLOWED:
        if layer == "compiler" and mod != layer:
            continue  # the bare package is only its __init__; compiler.x must be in a layer of its own
        if (mod == layer or mod.startswith(layer + ".")) and (best is None or len(layer) > len(best)):
            best = layer
    return best


def _is_module(name: str) -> bool:
    p = ROOT.joinpath(*name.split("."))
    return p.with_suffix(".py").exists() or (p / "__init__.py").exists()


def test_imports_follow_the_layering():
    bad = []
    for top in OURS:
        for path in (ROOT / top).rglob("*.py"):
            mod = _module_name(path)
            layer = _layer(mod)
            if layer is None:
                bad.append(f"{path.relative_to(ROOT)} belongs to no layer: add it to ALLOWED")
                continue
            for imp in _imports(path, mod):
                if _layer(imp) == layer or (imp in OURS and imp != "compiler"):
                    continue  # a bare package name other than `compiler`: its submodules are checked
                if not any(imp == a or imp.startswith(a + ".") for a in ALLOWED[layer]):
                    bad.append(f"{path.relative_to(ROOT)} ({layer}) imports {imp}")
    assert not bad, "layering violations:\n" + "\n".join(sorted(bad))


def test_importing_the_core_ir_loads_no_front_end_and_no_backend():
    code = ("import sys, compiler.ir, compiler.ops; "
            "print(sorted(m for m in sys.modules if m.startswith(('compiler.', 'passes', 'runtime'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    loaded = eval(out)
    assert not [m for m in loaded if not m.startswith(("compiler.ir", "compiler.ops", "compiler.version"))], loaded


def test_the_core_ir_knows_no_front_end():
    """popxl.Ir holds a core Ir (`.core`) instead of extending it, so the core (clone, serialize, verify,
    hashing, printer, dot) never meets a front-end field: no compiler/ir source names one."""
    from compiler import popxl
    from compiler.driver import program_of
    from compiler.ir import Ir
    from compiler.ir.clone import clone

    assert not issubclass(popxl.Ir, Ir)
    fe = popxl.Ir()
    # popxl.Ir's own members and state; those the core also has (replication_factor, ...) and the
    # generic `id` (graphs and ops have one too) are no front-end names
    own = {n for n in {*vars(popxl.Ir), *vars(fe)} if not n.startswith("__")}
    front = own - set(dir(Ir)) - set(vars(fe.core)) - {"id", "core"}
    assert {"_wrappers", "_stream_handles", "main_graph", "create_graph"} <= front
    found = []
    for path in sorted((ROOT / "compiler" / "ir").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            name = (node.attr if isinstance(node, ast.Attribute) else
                    node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None)
            if name in front:
                found.append(f"compiler/ir/{path.name}:{node.lineno} names {name!r}")
    assert not found, "the core IR names front-end fields:\n" + "\n".join(found)
    # the program is what the driver sees; a copy of it belongs to no front end
    assert program_of(fe) is fe.core and program_of(fe.core) is fe.core
    copy = clone(fe.core)
    assert type(copy) is Ir and set(vars(copy)) == set(vars(fe.core))
    with pytest.raises(TypeError, match="not built with compiler.popxl"):
        popxl.Ir.wrapper_of(copy.main)
    with pytest.raises(TypeError, match=r"compiler.ir.Ir or a front end's Ir.*got str"):
        program_of("ir.json")
