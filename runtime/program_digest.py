"""One string that differs when two processes would not run the same data-parallel program."""
from __future__ import annotations

import hashlib

from compiler.ir import Ir
from compiler.ir.hashing import ir_digest


def program_digest(ir: Ir) -> str:
    """The IR's structure, its replication and host transfers, and its variables' initial data."""
    h = hashlib.sha256(ir_digest(ir).encode())
    h.update(f"{ir.replication_factor}/{ir.num_host_transfers}".encode())
    for vid in ir.variables:
        h.update(ir.variables[vid].tobytes())
    return h.hexdigest()
