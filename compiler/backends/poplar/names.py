"""Readable, unique C++ identifiers for the IR's tensors and graphs."""
from __future__ import annotations

import re

_KEYWORDS = {
    "alignas", "alignof", "and", "asm", "auto", "bool", "break", "case", "catch", "char", "class", "const",
    "constexpr", "continue", "default", "delete", "do", "double", "else", "enum", "explicit", "export", "extern",
    "false", "float", "for", "friend", "goto", "if", "inline", "int", "long", "mutable", "namespace", "new",
    "noexcept", "not", "nullptr", "operator", "or", "private", "protected", "public", "register", "return",
    "short", "signed", "sizeof", "static", "struct", "switch", "template", "this", "throw", "true", "try",
    "typedef", "typeid", "typename", "union", "unsigned", "using", "virtual", "void", "volatile", "while", "xor",
    # names the emitted program itself uses
    "graph", "seq", "main", "pe", "poplar", "popops", "poplin", "popnn", "poputil", "std", "Tensor", "Graph",
    "Sequence", "Copy", "Call", "Subgraph", "state", "streams", "options", "engine", "device", "stepProgram",
    "addLinear", "broadcastTo", "initialised", "initialisedHalf", "initialisedBool", "loadRaw", "matMulOptions",
    "readBack", "dataDir", "HostTensor", "HostStream", "RunOptions", "DataStream", "Function", "Type", "FLOAT",
    "HALF", "INT", "BOOL", "element", "printValues", "halfToFloat", "parseArgs", "openDevice", "buildMain",
}


def identifier(text: str) -> str:
    """`text` as a C identifier: other characters become '_', runs collapse, a leading digit gets a prefix."""
    s = re.sub(r"[^0-9A-Za-z_]+", "_", text).strip("_")
    s = re.sub(r"__+", "__", s) or "t"
    if s[0].isdigit():
        s = "t" + s
    return s


class Namer:
    """Hands out identifiers unique within one C++ scope, derived from IR names."""

    def __init__(self, taken: set[str] | None = None) -> None:
        self.taken = set(_KEYWORDS) | set(taken or ())

    def fresh(self, text: str) -> str:
        base = identifier(text)
        name, k = base, 2
        while name in self.taken:
            name = f"{base}_{k}"
            k += 1
        self.taken.add(name)
        return name
