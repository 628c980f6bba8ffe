"""Work counted, never timed: lines of Python executed by a call (tests of how costs grow with size)."""
from __future__ import annotations

import sys
from typing import Any, Callable


def lines_executed(fn: Callable[[], Any]) -> int:
    n = 0

    def local(frame, event, arg):
        nonlocal n
        n += 1
        return local

    old = sys.gettrace()
    sys.settrace(lambda frame, event, arg: local)
    try:
        fn()
    finally:
        sys.settrace(old)
    return n
