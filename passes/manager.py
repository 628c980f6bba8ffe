"""PassManager: runs passes in order, times each, optionally verifies after each and dumps schedules.

    pm = PassManager(["schedule", "fuse_elementwise"], verify_each=True, dump_after={"fuse_elementwise"})
    records = pm.run(ir)        # [PassRecord(name, changed, seconds)]
    pm.dumps                    # [Dump("fuse_elementwise", "after", schedule text)]

With verify_each, a pass that leaves the IR invalid raises PassError naming the pass and the passes
run before it; an exception raised inside a pass carries the same history as a note.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

from compiler.ir import Ir, print_schedule, verify
from compiler.ir.verify import VerificationError

from .invariants import problems
from .registry import get_pass


@dataclass(frozen=True)
class PassRecord:
    name: str
    changed: bool
    seconds: float


@dataclass(frozen=True)
class Dump:
    name: str  # the pass
    when: str  # "before" | "after"
    text: str  # print_schedule of every graph


class PassError(RuntimeError):
    """A pass broke an IR invariant (the message names the pass and the passes run before it)."""


def schedules(ir: Ir) -> str:
    return "\n".join(print_schedule(g) for g in ir.graphs.values())


@dataclass
class PassManager:
    names: list[str]
    verify_each: bool = False
    dump_before: Iterable[str] = ()  # pass names, or "*" for every pass
    dump_after: Iterable[str] = ()
    on_dump: Callable[[Dump], None] | None = None
    dumps: list[Dump] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.names = list(self.names)
        for n in self.names:
            get_pass(n)  # unknown names fail before anything runs

    def _dump(self, ir: Ir, name: str, when: str, wanted: Iterable[str]) -> None:
        wanted = set(wanted)
        if "*" in wanted or name in wanted:
            d = Dump(name, when, schedules(ir))
            self.dumps.append(d)
            if self.on_dump is not None:
                self.on_dump(d)

    @staticmethod
    def _verify(ir: Ir, head: str) -> None:
        try:
            verify(ir)
        except VerificationError as e:
            raise PassError(f"{head}:\n{e}") from None
        found = problems(ir)
        if found:
            raise PassError("\n  - ".join([f"{head}:", *found]))

    def run(self, ir: Ir, stop_after: str | None = None) -> list[PassRecord]:
        if stop_after is not None and stop_after not in self.names:
            raise KeyError(f"pass {stop_after!r} is not in this pipeline: {', '.join(self.names) or '(empty)'}")
        if self.verify_each:
            self._verify(ir, "the IR was already invalid before the first pass")
        records: list[PassRecord] = []
        for name in self.names:
            history = ", ".join(r.name for r in records) or "none"
            self._dump(ir, name, "before", self.dump_before)
            t0 = time.perf_counter()
            try:
                changed = bool(get_pass(name)(ir))
            except Exception as e:
                e.add_note(f"while running pass {name!r} (passes run before it: {history})")
                raise
            records.append(PassRecord(name, changed, time.perf_counter() - t0))
            if changed:  # a memory plan describes the IR it was made for: drop it once the IR changes
                for g in ir.graphs.values():
                    g.memory_plan = None
            self._dump(ir, name, "after", self.dump_after)
            if self.verify_each:
                self._verify(ir, f"pass {name!r} broke the IR (passes run before it: {history})")
            if name == stop_after:
                break
        return records
