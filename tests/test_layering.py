"""The import direction of DESIGN.md, checked by parsing every module's imports."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# layer prefix -> prefixes of ours it may import (besides itself)
ALLOWED: dict[str, tuple[str, ...]] = {
    "compiler.ir": (),
    "compiler.ops": ("compiler.ir",),
    "compiler.autodiff": ("compiler.ir", "compiler.ops"),
    "compiler.popxl": ("compiler.ir", "compiler.ops", "compiler.driver", "compiler.autodiff"),
    "compiler.addons": ("compiler.ir", "compiler.ops", "compiler.popxl", "compiler.autodiff"),
    "compiler.optim": ("compiler.ir", "compiler.ops", "compiler.popxl", "compiler.driver", "compiler.autodiff"),
    "compiler.data": (),
    "passes": ("compiler.ir", "compiler.ops"),
    "compiler.backends": ("compiler.ir", "compiler.ops", "runtime", "compiler.driver"),
    "runtime": ("compiler.ir", "compiler.ops", "compiler.backends.reference"),
    "compiler.driver": ("compiler.ir", "compiler.ops", "passes", "compiler.backends", "runtime"),
}
# command-line entry points may use everything, like tools/
EXEMPT = {"passes.report"}
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
            out.add(name)
            for a in node.names:  # `from compiler import popxl` imports compiler.popxl
                out.add(f"{name}.{a.name}")
    return {i for i in out if i.split(".")[0] in OURS}


def _layer(mod: str) -> str | None:
    best = None
    for layer in ALLOWED:
        if (mod == layer or mod.startswith(layer + ".")) and (best is None or len(layer) > len(best)):
            best = layer
    return best


def _is_module(name: str) -> bool:
    p = ROOT.joinpath(*name.split("."))
    return p.with_suffix(".py").exists() or (p / "__init__.py").exists()


def test_imports_follow_the_layering():
    bad = []
    for top in ("compiler", "passes", "runtime"):
        for path in (ROOT / top).rglob("*.py"):
            mod = _module_name(path)
            layer = _layer(mod)
            if layer is None or mod in EXEMPT:
                continue
            for imp in _imports(path, mod):
                if not _is_module(imp):
                    imp = imp.rpartition(".")[0]  # `from x import name` where name is not a module
                if imp in OURS or _layer(imp) == layer:  # a bare package name: its submodules are checked
                    continue
                if not any(imp == a or imp.startswith(a + ".") for a in ALLOWED[layer]):
                    bad.append(f"{path.relative_to(ROOT)} ({layer}) imports {imp}")
    assert not bad, "layering violations:\n" + "\n".join(sorted(bad))
