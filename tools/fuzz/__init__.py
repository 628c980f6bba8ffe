"""Differential testing support: random programs built through the public popxl API (generate.py),
replayable as JSON recipes (program.py), run on several configurations and compared against the
reference interpreter with an exactness-aware tolerance (differential.py), and shrunk (shrink.py).
Used by `python -m tools.fuzz` and tests/fuzz."""
from .generate import random_program
from .program import build, count_steps, inputs
from .campaign import main  # noqa: E402  (campaign uses the names above)

__all__ = ["random_program", "build", "count_steps", "inputs", "main"]
