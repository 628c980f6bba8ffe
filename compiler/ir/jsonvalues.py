"""Tagged JSON for attribute values and arrays, a compact pretty-printer, and path -> line lookup.

Plain JSON holds None, bool, int, str, finite floats (written with repr, so they read back bit
for bit), tuples (JSON arrays) and dicts whose keys are strings. Everything else is a one-key
object whose key starts with "$":

    {"$list": [...]}          a list (arrays are tuples: attrs are frozen, tuples are the norm)
    {"$dict": [[k, v], ...]}  a dict with non-string keys, or keys starting with "$"
    {"$float": "nan"}         a non-finite float ("nan", "inf", "-inf")
    {"$dtype": "float16"}     a DType
    {"$np": ["float32", 0.1]} a numpy scalar (the number is the scalar's exact value)
    {"$array": {...}}         an ndarray (see `encode_array`)
    {"$<tag>": body}          a type registered with `register_codec` (e.g. compiler.ops' Expr)

A registered codec's body is plain data: its lists and tuples are written as arrays and read back
as lists (the codec's decoder makes tuples where it wants them); its numbers and DTypes are tagged
as above.
"""
from __future__ import annotations

import base64
import json
import math
import sys
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .dtypes import DType

Path_ = tuple  # a JSON path: keys and indices from the document root


class FormatError(ValueError):
    """A malformed part of a document: `path` says where, `reason` what is wrong."""

    def __init__(self, path: Path_, reason: str) -> None:
        super().__init__(f"at {path_str(path)}: {reason}")
        self.path = tuple(path)
        self.reason = reason


def path_str(path: Path_) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "<top level>"


@dataclass(frozen=True)
class Codec:
    typ: type
    encode: Callable[[Any], Any]
    decode: Callable[[Any], Any]


CODECS: dict[str, Codec] = {}


def register_codec(tag: str, typ: type, encode: Callable[[Any], Any], decode: Callable[[Any], Any]) -> None:
    """Let attributes of type `typ` be saved as {"$tag": encode(x)} and loaded with decode(body).

    The IR layer cannot import the packages above it, so they register their attribute types here."""
    CODECS[tag] = Codec(typ, encode, decode)


# ---------------------------------------------------------------------- arrays
INLINE_LIST_MAX = 16  # arrays up to this many elements are written as readable number lists


def encode_array(a: np.ndarray) -> dict:
    """{"dtype", "shape", "data": [numbers] (small, finite) or "b64": little-endian bytes}."""
    a = np.asarray(a)
    dt = DType.from_numpy(a.dtype)
    body: dict[str, Any] = {"dtype": dt.name, "shape": list(a.shape)}
    flat = a.reshape(-1)
    if flat.size <= INLINE_LIST_MAX and (not dt.is_float or np.isfinite(flat.astype(np.float64)).all()):
        body["data"] = flat.astype(np.float64).tolist() if dt.is_float else flat.tolist()
    else:
        raw = np.ascontiguousarray(flat)
        if sys.byteorder == "big" and dt is not DType.bfloat16:
            raw = raw.byteswap()
        body["b64"] = base64.b64encode(raw.tobytes()).decode("ascii")
    return body


def decode_array(body: Any, path: Path_) -> np.ndarray:
    if not isinstance(body, dict) or set(body) not in ({"dtype", "shape", "data"}, {"dtype", "shape", "b64"}):
        raise FormatError(path, 'an array needs "dtype", "shape" and one of "data" or "b64"')
    dt = decode_dtype(body["dtype"], path + ("dtype",))
    shape = body["shape"]
    if not isinstance(shape, list) or not all(isinstance(s, int) and s >= 0 for s in shape):
        raise FormatError(path + ("shape",), f"a shape is a list of non-negative ints, got {shape!r}")
    n = math.prod(shape)
    try:
        if "data" in body:
            flat = _inline_data(body["data"], dt, path)
        else:
            flat = np.frombuffer(base64.b64decode(body["b64"], validate=True), dtype=dt.numpy).copy()
            if sys.byteorder == "big" and dt is not DType.bfloat16:
                flat = flat.byteswap()
    except (ValueError, TypeError, OverflowError) as e:
        raise FormatError(path, f"unreadable {dt.name} array data ({e})") from None
    if flat.ndim != 1 or flat.size != n:
        raise FormatError(path, f"shape {tuple(shape)} needs {n} elements, the data has {flat.size}")
    return flat.reshape(shape)


def _inline_data(data: Any, dt: DType, path: Path_) -> np.ndarray:
    """A "data" list as `dt`: only numbers (no null, which numpy would read as NaN), integers within the
    dtype's range and floats that stay finite in it (encode_array writes non-finite arrays as "b64")."""
    types, what = ((int, float), "numbers") if dt.is_float else ((bool,), "true/false") if dt is DType.bool else (
        (int,), "integers")
    if not isinstance(data, list) or not all(type(x) in types for x in data):
        raise FormatError(path + ("data",), f"{dt.name} data is a list of {what}; null, strings and nested lists "
                          "are not data (non-finite values are saved as \"b64\")")
    if dt.is_float:
        wide = np.array(data, dtype=np.float64)
        with np.errstate(over="ignore"):
            flat = wide.astype(dt.numpy)
        if not np.isfinite(flat.astype(np.float64)).all():
            k = int(np.argmin(np.isfinite(flat.astype(np.float64))))
            raise FormatError(path + ("data", k), f"{data[k]!r} is not a finite {dt.name}")
        return flat
    if dt is not DType.bool:
        info = np.iinfo(dt.numpy)
        for k, x in enumerate(data):
            if not info.min <= x <= info.max:
                raise FormatError(path + ("data", k), f"{x!r} does not fit {dt.name}")
    return np.array(data, dtype=dt.numpy)


def decode_dtype(name: Any, path: Path_) -> DType:
    try:
        return DType[name]
    except (KeyError, TypeError):
        raise FormatError(path, f"unknown dtype {name!r}; known: {', '.join(d.name for d in DType)}") from None


# ---------------------------------------------------------------------- values
def encode(x: Any, plain: bool = False, where: str = "value") -> Any:
    """JSON for an attribute value (plain=True: lists are arrays too, for codec bodies)."""
    if isinstance(x, np.generic):  # before the float test: np.float64 is a float subclass
        return {"$np": [DType.from_numpy(x.dtype).name, encode(x.item(), plain, where)]}
    if x is None or type(x) in (bool, int, str):
        return x
    if type(x) is float:
        return x if math.isfinite(x) else {"$float": repr(x)}
    if isinstance(x, DType):
        return {"$dtype": x.name}
    if isinstance(x, tuple) or plain and isinstance(x, list):
        return [encode(i, plain, f"{where}[{k}]") for k, i in enumerate(x)]
    if isinstance(x, list):
        return {"$list": [encode(i, plain, f"{where}[{k}]") for k, i in enumerate(x)]}
    if isinstance(x, dict):
        if all(isinstance(k, str) and not k.startswith("$") for k in x):
            return {k: encode(v, plain, f"{where}.{k}") for k, v in x.items()}
        return {"$dict": [[encode(k, plain, where), encode(v, plain, f"{where}[{k!r}]")] for k, v in x.items()]}
    if isinstance(x, np.ndarray):
        return {"$array": encode_array(x)}
    for tag, c in CODECS.items():
        if isinstance(x, c.typ):
            return {f"${tag}": encode(c.encode(x), True, f"{where}.{tag}")}
    raise TypeError(f"cannot save {where} of type {type(x).__name__} ({x!r}): save supports None, bool, int, float, "
                    "str, tuple, list, dict, DType, numpy arrays and scalars, and types given to register_codec")


def decode(x: Any, path: Path_, plain: bool = False) -> Any:
    """The inverse of `encode`; errors name the JSON path."""
    if isinstance(x, list):
        items = [decode(i, path + (k,), plain) for k, i in enumerate(x)]
        return items if plain else tuple(items)
    if not isinstance(x, dict):
        return x
    tags = [k for k in x if k.startswith("$")]
    if not tags:
        return {k: decode(v, path + (k,), plain) for k, v in x.items()}
    if len(x) != 1:
        raise FormatError(path, f"a tagged value has exactly one key, got {sorted(x)}")
    tag, body = next(iter(x.items()))
    at = path + (tag,)
    if tag == "$list":
        if not isinstance(body, list):
            raise FormatError(at, f"expected a list, got {type(body).__name__}")
        return [decode(i, at + (k,), plain) for k, i in enumerate(body)]
    if tag == "$dict":
        try:
            return {_hashable(decode(k, at + (j, 0), plain)): decode(v, at + (j, 1), plain) for j, (k, v) in enumerate(body)}
        except (TypeError, ValueError):
            raise FormatError(at, "expected a list of [key, value] pairs") from None
    if tag == "$float":
        if body not in ("nan", "inf", "-inf"):
            raise FormatError(at, f'expected "nan", "inf" or "-inf", got {body!r}')
        return float(body)
    if tag == "$dtype":
        return decode_dtype(body, at)
    if tag == "$np":
        if not isinstance(body, list) or len(body) != 2:
            raise FormatError(at, "expected [dtype name, number]")
        return decode_dtype(body[0], at + (0,)).numpy.type(decode(body[1], at + (1,), plain))
    if tag == "$array":
        return decode_array(body, at)
    codec = CODECS.get(tag[1:])
    if codec is None:
        raise FormatError(at, f"unknown tag {tag!r}; known: $list $dict $float $dtype $np $array "
                          + " ".join(f"${t}" for t in CODECS) + " (codecs register when their package is imported)")
    try:
        return codec.decode(decode(body, at, plain=True))
    except FormatError:
        raise
    except Exception as e:  # a codec's decoder knows only its own body, so say where it failed
        raise FormatError(at, f"malformed {tag[1:]} ({type(e).__name__}: {e})") from None


def _hashable(k: Any) -> Any:
    return tuple(_hashable(i) for i in k) if isinstance(k, list) else k


# ------------------------------------------------------------------ reading
def field(d: Any, key: str, at: tuple, typ: type | tuple = object, default: Any = ...) -> Any:
    """d[key], checked to be a `typ` (missing: `default`, or an error naming the path)."""
    if not isinstance(d, dict):
        raise FormatError(at, f"expected an object, got {type(d).__name__}")
    if key not in d:
        if default is not ...:
            return default
        raise FormatError(at, f"missing field {key!r}")
    x = d[key]
    if not isinstance(x, typ) or isinstance(x, bool) and typ is int:
        names = " or ".join(t.__name__ for t in (typ if isinstance(typ, tuple) else (typ,)))
        raise FormatError(at + (key,), f"expected {names}, got {type(x).__name__} {x!r}")
    return x


def only_keys(d: dict, keys: set[str], at: tuple) -> None:
    if not isinstance(d, dict):
        raise FormatError(at, f"expected an object with fields {', '.join(sorted(keys))}, got {type(d).__name__}")
    extra = sorted(set(d) - keys)
    if extra:
        raise FormatError(at + (extra[0],), f"unknown field {extra[0]!r} (known: {', '.join(sorted(keys))})")


def int_key(k: str, at: tuple) -> int:
    try:
        return int(k)
    except ValueError:
        raise FormatError(at + (k,), f"expected an integer key, got {k!r}") from None


# ------------------------------------------------------------------ formatting
def _shallow(x: Any, levels: int) -> bool:
    """Whether `x` nests at most `levels` containers deep (stops at the first deeper one)."""
    items = x.values() if isinstance(x, dict) else x if isinstance(x, list) else None
    return items is None or levels > 0 and all(_shallow(i, levels - 1) for i in items)


def _bounded(x: Any, budget: int) -> str | None:
    """Compact JSON of `x` if it is at most `budget` characters, else None (without writing all of it)."""
    if isinstance(x, (dict, list)):
        parts = []
        for k, v in x.items() if isinstance(x, dict) else enumerate(x):
            s = _bounded(v, budget)
            if s is None:
                return None
            parts.append(f"{json.dumps(k)}: {s}" if isinstance(x, dict) else s)
            budget -= len(parts[-1]) + 2
            if budget < 0:
                return None
        return ("{%s}" if isinstance(x, dict) else "[%s]") % ", ".join(parts)
    if isinstance(x, str) and len(x) > budget:
        return None
    s = json.dumps(x, allow_nan=False)
    return s if len(s) <= budget else None


def dumps(doc: Any, width: int = 110) -> str:
    """JSON with one record per line: a node is on one line when it fits in `width`, or when it is a
    record of plain fields (an object at most two levels deep) or a flat list of numbers."""

    def fmt(x: Any, indent: str) -> str:
        flat = _bounded(x, width - len(indent))
        if flat is not None:
            return flat
        if _shallow(x, 2 if isinstance(x, dict) else 1):
            return json.dumps(x, allow_nan=False, separators=(", ", ": "))
        inner = indent + " "
        if isinstance(x, dict):
            items = [f"{inner}{json.dumps(k)}: {fmt(v, inner)}" for k, v in x.items()]
            return "{\n" + ",\n".join(items) + "\n" + indent + "}"
        return "[\n" + ",\n".join(inner + fmt(v, inner) for v in x) + "\n" + indent + "]"

    return fmt(doc, "") + "\n"


def line_of(text: str, path: Path_) -> int | None:
    """The 1-based line where the JSON value at `path` starts (None when the path is not in `text`)."""
    dec = json.JSONDecoder()
    i = 0

    def ws(j: int) -> int:
        while j < len(text) and text[j] in " \t\r\n":
            j += 1
        return j

    try:
        for key in path:
            i = ws(i)
            if text[i] == "{" and isinstance(key, str):
                i = ws(i + 1)
                while text[i] != "}":
                    k, i = json.decoder.scanstring(text, i + 1)
                    i = ws(ws(i) + 1)  # past the colon
                    if k == key:
                        break
                    i = ws(dec.raw_decode(text, i)[1])
                    i = ws(i + 1) if text[i] == "," else i
                else:
                    return None
            elif text[i] == "[" and isinstance(key, int):
                i = ws(i + 1)
                for _ in range(key):
                    if text[i] == "]":
                        return None
                    i = ws(dec.raw_decode(text, i)[1])
                    i = ws(i + 1) if text[i] == "," else i
                if text[i] == "]":
                    return None
            else:
                return None
        return text.count("\n", 0, ws(i)) + 1
    except (IndexError, ValueError):
        return None
