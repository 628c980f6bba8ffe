"""Replicas spread over processes: `mpiexec -n P python train.py`, through mpi4py (extra `[mpi]`).

Process p hosts replicas p*N/P .. (p+1)*N/P - 1. A collective is one exchange between the processes'
first replicas: an all-reduce over every replica runs in place on the replicas' buffers
(MPI_Allreduce, IN_PLACE, when the process hosts one replica and the dtype is native to MPI); small
buffers of consecutive all-reduces are bucketed into one call (runtime/buckets.py); everything else
gathers every replica's input to every process and applies the reference (compiler/ops/collectives.py),
so every process computes bit-identical results.

Faults: every blocking wait polls, with a deadline, for an abort message that a failing rank sends to
all others before it exits (`install_abort_hook`), so a rank that raises stops the others with an
error naming it; a rank that dies without a word trips the deadline (`timeout_s`).
"""
from __future__ import annotations

import atexit
import os
import sys
import time
from typing import Any

import numpy as np

from compiler.ops.collectives import ALL_REDUCE, reduce_over_replicas

from .replicas import ReplicaError

ABORT_TAG, ACK_TAG = 0x0AB0, 0x0AB1
ABORT_GRACE_S = 10.0  # how long a failing rank waits for the others to acknowledge its abort message
AGREE_BYTES = 256
DEFAULT_TIMEOUT_S = 300.0
# variables a launcher sets in each process it starts (MPICH/Hydra, Open MPI, Slurm's PMI)
_LAUNCHER_VARS = ("PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK")


def launched_by_mpi() -> bool:
    """Whether an MPI launcher started this process (so MPI is initialised only when it helps)."""
    return any(v in os.environ for v in _LAUNCHER_VARS)


_WORLD: "MPIWorld | None | bool" = False


def world() -> "MPIWorld | None":
    """The MPI world when this process was started by mpiexec with more than one process, else None."""
    global _WORLD
    if _WORLD is False:
        _WORLD = None
        if launched_by_mpi():
            try:
                from mpi4py import MPI
            except ImportError:
                raise ImportError("this process was started by an MPI launcher but mpi4py is not installed; "
                                  "install the extra: pip install -e '.[mpi]'") from None
            if MPI.COMM_WORLD.Get_size() > 1:
                _WORLD = MPIWorld(MPI.COMM_WORLD)
    return _WORLD  # type: ignore[return-value]


class MPIWorld:
    def __init__(self, comm: Any, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        from mpi4py import MPI

        self.MPI = MPI
        self.comm = comm.Dup()  # our own communicator: user traffic never matches ours
        self.ctl = comm.Dup()  # abort messages
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.timeout_s = timeout_s
        self.aborted_by: int | None = None
        self.broken: str | None = None
        self._abort_recv = self.ctl.irecv(source=MPI.ANY_SOURCE, tag=ABORT_TAG)
        install_abort_hook(self)
        atexit.register(self._close)  # runs before mpi4py's MPI_Finalize (registered earlier)

    def _close(self) -> None:
        """Withdraw the pending abort receive, so MPI_Finalize finds no request of ours in flight."""
        try:
            self._abort_recv.cancel()
            self._abort_recv.wait()
        except Exception:  # finalising anyway; a request that already completed cannot be cancelled
            pass

    # ------------------------------------------------------------ waiting with a deadline
    def wait(self, req: Any, what: str) -> Any:
        """Complete a nonblocking request, raising if another rank aborted or the deadline passed."""
        if self.broken:
            raise ReplicaError(self.broken)
        deadline = time.monotonic() + self.timeout_s
        sleep = 0.0
        while True:
            try:
                done, value = req.test()
            except self.MPI.Exception as e:
                raise self._break(f"rank {self.rank}: {what} failed in MPI ({e}); another rank probably died") from None
            if done:
                return value
            self.check_abort(what)
            if time.monotonic() > deadline:
                raise self._break(f"rank {self.rank}: {what} did not complete within {self.timeout_s:.0f} s; "
                                  "another rank died or is not running the same program")
            time.sleep(sleep)
            sleep = min(sleep + 1e-5, 1e-3)

    def check_abort(self, what: str) -> None:
        done, msg = self._abort_recv.test()
        if done:
            self._abort_recv = self.ctl.irecv(source=self.MPI.ANY_SOURCE, tag=ABORT_TAG)
            self.aborted_by = msg[0]  # acknowledged once this rank has reported the error (the hook below)
            raise self._break(f"rank {self.rank}: {what} abandoned because rank {msg[0]} failed: {msg[1]}")

    def _break(self, why: str) -> ReplicaError:
        """After this, every exchange fails at once: the ranks' collectives no longer match."""
        self.broken = why
        return ReplicaError(why)

    def Wait(self, req: Any, what: str) -> None:
        """Wait for a buffer request (Iallreduce, Iallgather...)."""
        self.wait(_BufferRequest(req), what)

    # ------------------------------------------------------------ start-up checks
    def agree(self, value: str, what: str) -> None:
        """Every rank must hold the same `value` (e.g. the program digest)."""
        mine = np.frombuffer(value.encode()[:AGREE_BYTES].ljust(AGREE_BYTES), np.uint8)
        every = np.empty((self.size, AGREE_BYTES), np.uint8)
        self.Wait(self.comm.Iallgather(mine, every), what)
        got = [bytes(row).decode().rstrip() for row in every]
        if len(set(got)) > 1:
            ranks = {v: [r for r, g in enumerate(got) if g == v] for v in got}
            raise ReplicaError(f"rank {self.rank}: {what} differs between ranks ({ranks}); every rank must run "
                               "the same program with the same settings")

    # ------------------------------------------------------------ collectives
    def exchange(self, kind: str, attrs: dict[str, Any], local: list[np.ndarray],
                 out: list[np.ndarray] | None) -> list[np.ndarray]:
        """This process's replicas' outputs, given their inputs (every process calls it in the same order)."""
        MPI = self.MPI
        stride, size = attrs["group"]
        n_local = len(local)
        if kind in ALL_REDUCE and size == self.size * n_local and n_local == 1 and _native(local[0].dtype):
            op = attrs["op"]
            buf = out[0] if out is not None else np.array(local[0], copy=True)
            if buf is not local[0]:
                np.copyto(buf, local[0])
            if op == "square_add":
                np.multiply(buf, buf, out=buf)
            flat = buf.reshape(-1)
            self.Wait(self.comm.Iallreduce(MPI.IN_PLACE, flat, op=_MPI_OPS[op](MPI)), f"all-reduce ({op})")
            if op == "mean":
                if buf.dtype.kind in "iu":
                    np.floor_divide(buf, size, out=buf)
                else:
                    np.divide(buf, np.array(size, buf.dtype), out=buf)
            return [buf]
        # general case: every process gets every replica's input, then the reference
        mine = np.stack([np.ascontiguousarray(x) for x in local])
        every = np.empty((self.size, *mine.shape), mine.dtype)
        self.Wait(self.comm.Iallgather(mine.reshape(-1).view(np.uint8),
                                       every.reshape(-1).view(np.uint8)), f"{kind} exchange")
        inputs = list(every.reshape((self.size * n_local, *local[0].shape)))
        outs = reduce_over_replicas(kind, attrs, inputs)
        return outs[self.rank * n_local:(self.rank + 1) * n_local]

    # ------------------------------------------------------------ failure
    def abort_others(self, why: str) -> None:
        """Tell every other rank that this one failed (best effort, before this process exits)."""
        others = [r for r in range(self.size) if r != self.rank]
        for r in others:
            self.ctl.isend((self.rank, why), dest=r, tag=ABORT_TAG)
        # stay until every other rank has seen it (or the grace period ends): once this process exits,
        # the launcher may kill the others before they could say why they stop
        acks = [self.ctl.irecv(source=r, tag=ACK_TAG) for r in others]
        deadline = time.monotonic() + ABORT_GRACE_S
        while acks and time.monotonic() < deadline:
            acks = [a for a in acks if not a.test()[0]]
            time.sleep(1e-3)


def _native(dt: np.dtype) -> bool:
    return dt in (np.float32, np.float64, np.int32, np.int64, np.uint32, np.uint64, np.int8, np.uint8, np.int16,
                  np.uint16, np.bool_)


_MPI_OPS = {"add": lambda M: M.SUM, "mean": lambda M: M.SUM, "square_add": lambda M: M.SUM,
            "mul": lambda M: M.PROD, "min": lambda M: M.MIN, "max": lambda M: M.MAX,
            "and": lambda M: M.LAND, "or": lambda M: M.LOR}


class _BufferRequest:
    """mpi4py's buffer requests return (done, status); make them look like object requests."""

    def __init__(self, req: Any) -> None:
        self.req = req

    def test(self) -> tuple[bool, None]:
        return bool(self.req.Test()), None


_HOOKED = False


def install_abort_hook(w: MPIWorld) -> None:
    """An uncaught exception on this rank tells the other ranks before the process exits."""
    global _HOOKED
    if _HOOKED:
        return
    _HOOKED = True
    previous = sys.excepthook

    def hook(tp: Any, value: BaseException, tb: Any) -> None:
        previous(tp, value, tb)
        sys.stderr.flush()
        if not isinstance(value, ReplicaError):  # the root cause, not a consequence: tell the others
            w.abort_others(f"{tp.__name__}: {value}".strip()[:500])
        elif w.aborted_by is not None:  # reported: the failing rank may exit now
            req = w.ctl.isend(w.rank, dest=w.aborted_by, tag=ACK_TAG)
            deadline = time.monotonic() + 1.0
            while not req.test()[0] and time.monotonic() < deadline:
                time.sleep(1e-3)
        os._exit(1)  # MPI_Finalize would wait for ranks that are gone

    sys.excepthook = hook
