"""ShardLayout: how a variable that `shard_weight_update` keeps sharded lies across the replicas.

The full tensor is flattened, zero-padded to N*k elements (k = ceil(numel / N)) and cut into N
contiguous pieces; replica r of the group holds piece r, a (k,) buffer. This is the layout of
`replicated_reduce_scatter` / `replica_sharded_slice`, so the pass's collectives and the Session's
host copies agree element for element. The padding is never read back.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class ShardLayout:
    shape: tuple[int, ...]  # the full (unsharded) shape the user's program declares
    replicas: int  # N: the shards, one per replica

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def shard(self) -> int:
        """Elements each replica holds (k)."""
        return -(-self.numel // self.replicas)

    def split(self, full: np.ndarray) -> list[np.ndarray]:
        """The N shards of a full array (each a new (k,) array; the last one's tail is zeros)."""
        if full.shape != self.shape:
            raise ValueError(f"a sharded variable of shape {self.shape} cannot take an array of shape {full.shape}")
        flat = np.zeros(self.shard * self.replicas, full.dtype)
        flat[:self.numel] = full.reshape(-1)
        return [flat[r * self.shard:(r + 1) * self.shard].copy() for r in range(self.replicas)]

    def join(self, shards: Sequence[np.ndarray]) -> np.ndarray:
        """The full array from every replica's shard, in replica order (padding dropped)."""
        if len(shards) != self.replicas or any(s.shape != (self.shard,) for s in shards):
            raise ValueError(f"joining a sharded variable of shape {self.shape} needs {self.replicas} shards of "
                             f"({self.shard},), got {[tuple(s.shape) for s in shards]}")
        return np.concatenate(list(shards))[:self.numel].reshape(self.shape)
