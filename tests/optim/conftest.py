"""torch (when a test module imported it) runs on one thread here: on a shared 2-core machine its
thread pool makes a tiny MLP's backward 20x slower, and the tests compare numbers, not speed."""
from __future__ import annotations

import sys

import pytest


@pytest.fixture(autouse=True)
def _torch_one_thread():
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
