"""Shrinking a failing fuzz program: delete steps while the failure persists (delta debugging).

Deleting a step never makes a program invalid (steps whose inputs are gone are skipped, see
program.py), so the shrinker only has to ask "does it still fail the same way?". It works on the
top-level list first, then inside in_sequence blocks and subgraph bodies, halving the chunk size
down to single steps, and repeats until a whole round removes nothing or the budget is spent.
"""
from __future__ import annotations

import copy
from typing import Callable, Iterator


def _lists(steps: list[dict]) -> Iterator[list[dict]]:
    yield steps
    for s in steps:
        if "body" in s:
            yield from _lists(s["body"])


def shrink(program: dict, still_fails: Callable[[dict], bool], budget: int = 300) -> tuple[dict, int]:
    """A smaller program for which `still_fails` holds, and how many candidates were tried."""
    prog = copy.deepcopy(program)
    tries = 0
    if prog.get("nht", 1) != 1:
        tries += 1
        cand = {**prog, "nht": 1}
        if still_fails(cand):
            prog = cand
    changed = True
    while changed and tries < budget:
        changed = False
        for lst in list(_lists(prog["steps"])):
            chunk = max(len(lst) // 2, 1)
            while chunk >= 1 and tries < budget:
                i = 0
                while i < len(lst) and tries < budget:
                    removed = lst[i:i + chunk]
                    del lst[i:i + chunk]
                    tries += 1
                    if still_fails(prog):
                        changed = True
                    else:
                        lst[i:i] = removed
                        i += chunk
                chunk //= 2
    return prog, tries
