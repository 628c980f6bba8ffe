"""A kernel compile process: `python -m compiler.backends.llvm.compile_worker`.

It reads jobs from stdin and writes object files to stdout, each message a 4-byte big-endian length
and a pickle: in (module text, Target, opt level), out ("ok", object bytes) or ("error", message).
It ends at end of input. A fresh interpreter, not a fork: a forked child would inherit whatever
lock another of our threads held (llvmlite's, libgomp's), and multiprocessing's spawn and
forkserver children import the user's __main__ again. Used by jobs.ObjectJobs for workers >= 2.
"""
from __future__ import annotations

import pickle
import struct
import sys
from typing import BinaryIO

HEADER = struct.Struct(">I")


def read_message(stream: BinaryIO) -> object | None:
    """The next message, or None at a clean end of input (a truncated one raises EOFError)."""
    head = stream.read(HEADER.size)
    if not head:
        return None
    if len(head) < HEADER.size:
        raise EOFError("truncated message header")
    (size,) = HEADER.unpack(head)
    body = stream.read(size)
    if len(body) < size:
        raise EOFError(f"truncated message: {len(body)} of {size} bytes")
    return pickle.loads(body)


def write_message(stream: BinaryIO, message: object) -> None:
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(HEADER.pack(len(body)) + body)
    stream.flush()


def serve(inp: BinaryIO, out: BinaryIO) -> None:
    from . import target
    from .jobs import to_object

    machines = {}
    while (job := read_message(inp)) is not None:
        text, tgt, level = job  # type: ignore[misc]
        try:
            if tgt not in machines:
                target.init()
                machines[tgt] = target.target_machine(tgt)
            write_message(out, ("ok", to_object(text, machines[tgt], level)))
        except Exception as e:  # reported to the compiling process, which raises it there
            write_message(out, ("error", f"{type(e).__name__}: {e}"))


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)
