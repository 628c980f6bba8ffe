"""tests/passes: helpers in pass_helpers.py (importable by name); random programs come from tools/fuzz."""
from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
for p in (HERE, HERE.parents[1] / "examples"):
    if str(p) not in sys.path:
        sys.path.append(str(p))  # appended: `conftest` must stay tests/conftest.py
