"""A parser for the small C++ subset the Poplar emitter writes (test support, not a C++ front end).

Statements are split at top-level ';'. Expressions: literals, names (with ::), calls with optional
template arguments, braced lists, method calls, member access, indexing and unary minus. Anything else
is a parse error, so emitted code that leaves the subset fails the tests loudly.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_TOKEN = re.compile(r"""
    (?P<ws>\s+|//[^\n]*) |
    (?P<attr>\[\[maybe_unused\]\]) |
    (?P<str>"(?:\\.|[^"\\])*") |
    (?P<num>0x[0-9a-fA-F]+|(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?(?:f|u|LL)?) |
    (?P<name>(?:::)?[A-Za-z_][A-Za-z0-9_]*(?:::[A-Za-z_][A-Za-z0-9_]*)*) |
    (?P<op>[(){}\[\],;.<>=&*-])
""", re.VERBOSE)


@dataclass(frozen=True)
class Tok:
    kind: str
    text: str


def tokens(src: str) -> list[Tok]:
    out, pos = [], 0
    while pos < len(src):
        m = _TOKEN.match(src, pos)
        if not m:
            raise SyntaxError(f"cannot tokenize C++ near {src[pos:pos + 40]!r}")
        pos = m.end()
        kind = m.lastgroup
        if kind not in ("ws", "attr"):
            out.append(Tok(kind, m.group()))
    return out


def split_statements(body: str) -> list[str]:
    """Top-level statements of a function body (text between ';' at bracket depth 0)."""
    out, depth, start, i = [], 0, 0, 0
    while i < len(body):
        c = body[i]
        if c == '"':
            i += 1
            while body[i] != '"':
                i += 2 if body[i] == "\\" else 1
        elif body.startswith("//", i):
            i = body.index("\n", i) if "\n" in body[i:] else len(body)
            continue
        elif c in "({[":
            depth += 1
        elif c in ")}]":
            depth -= 1
        elif c == ";" and depth == 0:
            text = body[start:i].strip()
            text = "\n".join(line for line in text.split("\n") if not line.strip().startswith("//")).strip()
            if text:
                out.append(text)
            start = i + 1
        i += 1
    return out


class Parser:
    def __init__(self, text: str) -> None:
        self.t = tokens(text)
        self.i = 0

    def peek(self, k: int = 0) -> Tok | None:
        return self.t[self.i + k] if self.i + k < len(self.t) else None

    def take(self, text: str | None = None) -> Tok:
        tok = self.peek()
        if tok is None or (text is not None and tok.text != text):
            raise SyntaxError(f"expected {text!r}, got {tok.text if tok else 'end'!r} in {self.context()}")
        self.i += 1
        return tok

    def context(self) -> str:
        return " ".join(t.text for t in self.t[max(0, self.i - 8):self.i + 8])

    def at(self, text: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.text == text

    def done(self) -> bool:
        return self.i >= len(self.t)

    # ------------------------------------------------------------ expressions
    def expr(self) -> Any:
        if self.at("-"):
            self.take()
            return ("neg", self.expr())
        e = self.primary()
        while True:
            if self.at("."):
                self.take()
                name = self.take().text
                if self.at("("):
                    e = ("method", e, name, self.args("(", ")"))
                else:
                    e = ("member", e, name)
            elif self.at("["):
                self.take()
                idx = self.expr()
                self.take("]")
                e = ("index", e, idx)
            elif self.peek() is not None and self.peek().kind == "name" and self.peek().text.startswith("::"):
                e = ("scope", e, self.take().text[2:])
                if self.at("("):
                    e = ("call", e, None, self.args("(", ")"))
            else:
                return e

    def args(self, open_: str, close: str) -> list[Any]:
        self.take(open_)
        out = []
        while not self.at(close):
            out.append(self.expr())
            if not self.at(close):
                self.take(",")
        self.take(close)
        return out

    def primary(self) -> Any:
        tok = self.peek()
        if tok is None:
            raise SyntaxError("unexpected end of expression")
        if tok.kind == "num":
            self.take()
            return ("num", tok.text)
        if tok.kind == "str":
            self.take()
            return ("str", bytes(tok.text[1:-1], "utf-8").decode("unicode_escape"))
        if tok.text == "{":
            return ("brace", self.args("{", "}"))
        if tok.text == "sizeof":  # sizeof(unsigned char): the type, unparsed
            self.take()
            self.take("(")
            parts = []
            while not self.at(")"):
                parts.append(self.take().text)
            self.take(")")
            return ("sizeof", " ".join(parts))
        if tok.kind == "name":
            self.take()
            targs = None
            if self.at("<") and tok.text in TEMPLATES:
                self.take("<")
                parts = []
                while not self.at(">"):
                    parts.append(self.take().text)
                self.take(">")
                targs = " ".join(parts)
            if self.at("("):
                return ("call", ("name", tok.text), targs, self.args("(", ")"))
            if self.at("{") and tok.text[:1].isupper():
                return ("ctor", tok.text, self.args("{", "}"))
            return ("name", tok.text, targs) if targs else ("name", tok.text)
        raise SyntaxError(f"unexpected {tok.text!r} in {self.context()}")


TEMPLATES = {"initialised", "loadRaw", "std::vector", "std::numeric_limits"}


def parse_expr(text: str) -> Any:
    p = Parser(text)
    e = p.expr()
    if not p.done():
        raise SyntaxError(f"trailing tokens in {text!r}: {p.context()}")
    return e


def parse_statement(text: str) -> tuple:
    """('decl', type, name, expr) | ('assign', name, expr) | ('return', expr) | ('expr', expr)."""
    p = Parser(text)
    first = p.peek()
    if first is not None and first.text in ("Tensor", "DataStream", "Sequence", "const", "std::vector"):
        if first.text == "const":
            p.take()
        ty = p.take().text
        if ty == "std::vector":
            p.take("<")
            while not p.at(">"):
                p.take()
            p.take(">")
        name = p.take().text
        if p.done():
            return ("decl", ty, name, None)
        p.take("=")
        e = p.expr()
    elif first is not None and first.text == "return":
        p.take()
        e = p.expr()
        if not p.done():
            raise SyntaxError(f"trailing tokens in {text!r}")
        return ("return", e)
    elif p.peek(1) is not None and p.peek(1).text == "=":
        name = p.take().text
        p.take("=")
        e = p.expr()
        if not p.done():
            raise SyntaxError(f"trailing tokens in {text!r}")
        return ("assign", name, e)
    else:
        e = p.expr()
        if not p.done():
            raise SyntaxError(f"trailing tokens in {text!r}: {p.context()}")
        return ("expr", e)
    if not p.done():
        raise SyntaxError(f"trailing tokens in {text!r}: {p.context()}")
    return ("decl", ty, name, e)
