"""PopXL's view ops (slice_, transpose_, reshape_, flatten_, concat_, detach_) alias their input: a
later in-place write through either tensor is seen through the other. This compiler computes views
as copies, so it refuses such a write (loudly, naming both tensors) instead of giving different
results; reads through views behave exactly as in PopXL."""
from __future__ import annotations

from typing import TYPE_CHECKING

from compiler.ir import Op

if TYPE_CHECKING:
    from ..graph import Graph

VIEW_KINDS = {"SliceInplace", "TransposeInplace", "ReshapeInplace", "ConcatInplace", "DetachInplace"}


def note_view(g: "Graph", op: Op) -> None:
    if op.kind in VIEW_KINDS:
        out = op.outputs[0]
        for v in op.inputs:
            g._views[out.storage] = (op, v.name)
            g._views.setdefault(v.storage, (op, out.name))


def check_write(g: "Graph", kind: str, written: list[tuple[str, int]]) -> None:
    """Raise if `kind` would write in place to storage that a view op shares."""
    from compiler.ops import OpError

    for name, storage in written:
        hit = g._views.get(storage)
        if hit is not None:
            op, other = hit
            raise OpError(
                f"{kind}: writes in place to {name!r}, which aliases {other!r} through the view op {op.kind} "
                f"({op.name}). PopXL would update both; this compiler computes views as copies and refuses the "
                f"write. Use the out-of-place op ({op.kind.replace('Inplace', '').lower()}) instead of the view.")
