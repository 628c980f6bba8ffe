"""Kernels compiled on compile processes (CompileOptions.compile_workers >= 2, jobs.py)."""
from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from compiler.backends.llvm import jobs, target
from compiler.driver import CompileOptions, lower

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "examples"))
import deep_mlp  # noqa: E402


def _lower(workers: int):
    ir = deep_mlp.train_ir(3, 16, 4)[0]
    return lower(ir, "llvm", CompileOptions(use_cache=False, compile_workers=workers))


def test_processes_compile_the_same_objects_as_the_thread():
    a, b = _lower(1), _lower(3)
    assert b.compiled_kernels > 1
    assert a.obj == b.obj and a.kernels == b.kernels


def test_a_failed_compile_in_a_process_raises_with_the_llvm_message():
    with pytest.raises(RuntimeError, match="compiling a kernel failed in a compile process: .*"):
        jobs.PROCESSES.compile("this is not LLVM IR", target.resolve(), "auto")
    # the process that reported the failure is still fine for the next module
    assert _lower(2).compiled_kernels > 1


def test_a_killed_compile_process_is_a_clear_error_and_the_next_compile_recovers():
    worker = jobs.CompileProcess()
    os.kill(worker.proc.pid, signal.SIGKILL)
    worker.proc.wait()
    with pytest.raises(RuntimeError, match=r"(?s)kernel compile process \(pid \d+\) died.*compile_workers=1"):
        worker.compile("; empty module\n", target.resolve(), "auto")
    _lower(2)  # leaves idle compile processes in the pool
    for w in list(jobs.PROCESSES.idle):  # they die while idle: the pool starts fresh ones
        os.kill(w.proc.pid, signal.SIGKILL)
        w.proc.wait()
    assert _lower(2).compiled_kernels > 1


def test_a_forked_child_never_uses_its_parents_processes():
    _lower(2)
    parents = {w.proc.pid for w in jobs.PROCESSES.idle}
    pid = os.fork()
    if pid == 0:  # the child: compile, then report through the exit code whether a parent's process served
        code = 1
        try:
            jobs.PROCESSES.compile("; empty module\n", target.resolve(), "auto")
            code = 0 if not parents & {w.proc.pid for w in jobs.PROCESSES.idle} else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


@pytest.mark.parametrize("bad", [-1, 1.5, True, "2"])
def test_bad_worker_counts_are_refused(bad):
    with pytest.raises(ValueError, match="compile_workers"):
        jobs.ObjectJobs(target.resolve(), workers=bad)
