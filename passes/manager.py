"""PassManager: runs passes in order, timing each, optionally verifying after each and dumping schedules."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from compiler.ir import Ir, print_schedule, verify
from compiler.ir.verify import VerificationError

from .registry import get_pass


@dataclass(frozen=True)
class PassRecord:
    name: str
    changed: bool
    seconds: float


class PassError(RuntimeError):
    pass


def schedules(ir: Ir) -> str:
    return "\n".join(print_schedule(g) for g in ir.graphs.values())


class PassManager:
    def __init__(self, names: list[str], verify_each: bool = False,
                 dump: Callable[[str, str, str], None] | None = None) -> None:
        self.names = list(names)
        self.verify_each = verify_each
        self.dump = dump  # dump(pass name, "before"/"after", schedule text)

    def run(self, ir: Ir, stop_after: str | None = None) -> list[PassRecord]:
        if stop_after is not None and stop_after not in self.names:
            raise KeyError(f"pass {stop_after!r} is not in this pipeline: {', '.join(self.names)}")
        records: list[PassRecord] = []
        for name in self.names:
            fn = get_pass(name)
            if self.dump:
                self.dump(name, "before", schedules(ir))
            t0 = time.perf_counter()
            changed = bool(fn(ir))
            records.append(PassRecord(name, changed, time.perf_counter() - t0))
            if self.dump:
                self.dump(name, "after", schedules(ir))
            if self.verify_each:
                try:
                    verify(ir)
                except VerificationError as e:
                    history = ", ".join(r.name for r in records[:-1]) or "none"
                    raise PassError(f"pass {name!r} broke the IR (passes run before it: {history}):\n{e}") from None
            if name == stop_after:
                break
        return records
