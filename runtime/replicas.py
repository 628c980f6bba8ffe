"""Running the replicas hosted by one process, and where they meet at collectives.

Each local replica runs the program on its own thread (compiled code releases the GIL; the
interpreter shares it). At a collective every member deposits its input, the process's first
replica computes every member's output with the reference over all replicas
(compiler/ops/collectives.py: members combined in ascending replica order, so results never depend
on thread timing), and each member takes its own. Under MPI (runtime/mpi.py) that first replica
exchanges with the other processes instead. A replica that fails breaks the barrier, so the others
stop at their next collective with an error naming it, instead of waiting forever.
"""
from __future__ import annotations

import threading
from typing import Any, Callable, Protocol

import numpy as np

from compiler.ops.collectives import combine, reduce_over_replicas


# collectives whose members' outputs are computed by the members themselves in one process (see
# Rendezvous._member_parallel): the reduce-scatter and all-gather of shard_weight_update
MEMBER_PARALLEL = ("ReplicatedReduceScatter", "ReplicatedAllGather")


class ReplicaError(RuntimeError):
    """A replica failed, or a collective could not complete because another replica or process did."""


class World(Protocol):
    """The processes beyond this one (runtime/mpi.py); None when one process hosts every replica."""

    rank: int
    size: int

    def exchange(self, kind: str, attrs: dict[str, Any], local: list[np.ndarray],
                 out: list[np.ndarray] | None) -> list[np.ndarray]: ...


class Rendezvous:
    """Where the `n_local` replicas of this process meet at collectives (replica indices first ..
    first + n_local - 1 of `n_total`)."""

    def __init__(self, n_local: int, first: int, n_total: int, world: World | None = None,
                 timeout_s: float | None = None) -> None:
        self.n_local, self.first, self.n_total, self.world = n_local, first, n_total, world
        self._barrier = threading.Barrier(n_local, timeout=timeout_s)
        self._inputs: list[Any] = [None] * n_local
        self._outs: list[np.ndarray] = []
        self._error: BaseException | None = None
        self._errors: list[BaseException | None] = [None] * n_local  # of the member-parallel collectives
        self.failure: str | None = None  # why the replicas stopped: the first failure

    def reset(self) -> None:
        """Ready for the next run after a failed one."""
        self._barrier.reset()
        self.failure = None
        self._error = None

    def fail(self, local: int, exc: BaseException) -> None:
        """Replica `local` failed: wake the others (their collectives raise ReplicaError)."""
        if self.failure is None:
            self.failure = f"replica {self.first + local} failed: {type(exc).__name__}: {exc}"
        self._barrier.abort()

    def _wait(self, local: int) -> None:
        try:
            self._barrier.wait()
        except threading.BrokenBarrierError:
            why = self.failure or "a replica did not reach the collective in time"
            raise ReplicaError(f"replica {self.first + local}: collective abandoned because {why}") from None

    def collective(self, local: int, kind: str, attrs: dict[str, Any], x: np.ndarray,
                   out: np.ndarray | None = None) -> np.ndarray:
        """Replica `local`'s output of collective `kind` over its input `x` (written into `out` if given;
        `out` may be `x` itself for an in-place collective)."""
        if self.n_local == 1 and self.world is None:  # the only replica: the reference over one
            r = reduce_over_replicas(kind, attrs, [x])[0]
            return _into(out, r)
        self._inputs[local] = (x, out)
        if self.world is None and _member_parallel(kind, attrs, x, self.n_total):
            return self._member_parallel(local, kind, attrs, out)
        self._wait(local)
        if local == 0:
            try:
                self._outs = self._reduce(kind, attrs)
                self._error = None
            except BaseException as e:  # every member raises it, not only this one
                self._error = e
        self._wait(local)
        if self._error is not None:
            raise ReplicaError(f"replica {self.first + local}: {kind} failed: {self._error}") from self._error
        return _into(out, self._outs[local])

    def _member_parallel(self, local: int, kind: str, attrs: dict[str, Any], out: np.ndarray | None) -> np.ndarray:
        """A reduce-scatter or all-gather over every replica of this process, each member computing its own
        output (its piece of the reduction; its copy of the pieces) on its own thread, where the general
        path has one thread compute every output. Same combination order, so the same bits."""
        self._errors[local] = None
        self._wait(local)  # every input deposited
        mine: np.ndarray | None = None
        try:
            xs = [x for x, _ in self._inputs]
            if kind == "ReplicatedReduceScatter":
                flat = [x.reshape(-1) for x in xs]
                k = -(-flat[0].size // self.n_total)
                start, stop = min(local * k, flat[0].size), min((local + 1) * k, flat[0].size)
                mine = np.zeros(k, flat[0].dtype) if out is None else out.reshape(-1)
                mine[:stop - start] = combine(attrs["op"], [f[start:stop] for f in flat])
                mine[stop - start:] = 0
            else:  # ReplicatedAllGather, members' tensors stacked ("new_axis") or laid end to end
                whole = np.empty((self.n_total, xs[0].size), xs[0].dtype)
                for m, x in enumerate(xs):
                    whole[m] = x.reshape(-1)
                if attrs["mode"] == "meta_shape":
                    whole = whole.reshape(-1)[:int(np.prod(attrs["out_shape"]))]
                mine = _into(out, whole.reshape(attrs["out_shape"]))
        except BaseException as e:  # every member raises, after the others have finished reading
            self._errors[local] = e
        self._wait(local)  # nobody overwrites an input another member still reads
        failed = next((e for e in self._errors if e is not None), None)
        if failed is not None:
            raise ReplicaError(f"replica {self.first + local}: {kind} failed: {failed}") from failed
        assert mine is not None
        return mine

    def _reduce(self, kind: str, attrs: dict[str, Any]) -> list[np.ndarray]:
        xs = [x for x, _ in self._inputs]
        if self.world is None:
            return reduce_over_replicas(kind, attrs, xs)
        outs = [o for _, o in self._inputs]
        return self.world.exchange(kind, attrs, xs, outs if all(o is not None for o in outs) else None)


def _member_parallel(kind: str, attrs: dict[str, Any], x: np.ndarray, n_total: int) -> bool:
    """Whether Rendezvous._member_parallel computes this collective: over every replica, and for an all-gather
    one whose result is the members' tensors end to end."""
    if kind not in MEMBER_PARALLEL or tuple(attrs["group"]) != (1, n_total):
        return False
    return kind != "ReplicatedAllGather" or attrs["mode"] in ("new_axis", "meta_shape") or \
        (attrs["mode"] == "concat" and attrs["axis"] % max(x.ndim, 1) == 0)


def _into(out: np.ndarray | None, r: np.ndarray) -> np.ndarray:
    if out is None:
        return r
    if r is not out:
        np.copyto(out, r.reshape(out.shape))
    return out


# run one replica: (local index, its variables, its streams, iterations) -> its output streams
ReplicaRun = Callable[[int, dict[int, np.ndarray], dict[str, np.ndarray], int], dict[str, np.ndarray]]


def run_replicas(rendezvous: Rendezvous, run_one: ReplicaRun, variables: list[dict[int, np.ndarray]],
                 streams: list[dict[str, np.ndarray]], iterations: int) -> list[dict[str, np.ndarray]]:
    """Run every local replica concurrently; returns each one's output streams, or raises the first
    failure (a failing replica aborts the others at their next collective)."""
    n = rendezvous.n_local
    results: list[Any] = [None] * n
    errors: list[BaseException | None] = [None] * n

    def body(k: int) -> None:
        try:
            results[k] = run_one(k, variables[k], streams[k], iterations)
        except BaseException as e:
            errors[k] = e
            rendezvous.fail(k, e)

    if n == 1:
        body(0)
    else:
        threads = [threading.Thread(target=body, args=(k,), name=f"replica-{rendezvous.first + k}", daemon=True)
                   for k in range(1, n)]
        for t in threads:
            t.start()
        body(0)
        for t in threads:
            t.join()
    # report the root cause: a replica's own error before the others' "abandoned" errors
    first = next((e for e in errors if e is not None and not isinstance(e, ReplicaError)), None)
    first = first or next((e for e in errors if e is not None), None)
    if first is not None:
        rendezvous.reset()
        raise first
    return results


class ReplicatedExecutable:
    """The local replicas of one program: `base` (an executable with `replica_runner`) run once per replica.

    run_replicas(variables, streams, iterations) takes and returns one dict per local replica."""

    def __init__(self, base: Any, n_local: int, first: int, n_total: int, world: World | None = None,
                 timeout_s: float | None = None) -> None:
        self.ir = base.ir
        self.base = base
        self.rendezvous = Rendezvous(n_local, first, n_total, world, timeout_s)
        self._runners = [base.replica_runner(self.rendezvous, k) for k in range(n_local)]

    def run_replicas(self, variables: list[dict[int, np.ndarray]], streams: list[dict[str, np.ndarray]],
                     iterations: int) -> list[dict[str, np.ndarray]]:
        return run_replicas(self.rendezvous, lambda k, v, s, it: self._runners[k](v, s, it), variables, streams,
                            iterations)
