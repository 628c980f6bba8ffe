"""popxl.ReplicaGrouping: which replicas share a variable's value or take part in a collective."""
from __future__ import annotations

from compiler.ops.collectives import group_index


class ReplicaGrouping:
    """Replicas in groups of `group_size`, members `stride` apart (PopXL's meaning): with 4 replicas,
    (stride=1, group_size=2) groups {0, 1} and {2, 3}; (stride=2, group_size=2) groups {0, 2} and {1, 3}."""

    def __init__(self, num_replicas: int, stride: int = 1, group_size: int | None = None) -> None:
        size = num_replicas if group_size is None else group_size
        for what, v in (("stride", stride), ("group_size", size)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"ReplicaGrouping: {what} must be a positive int, got {v!r}")
        if num_replicas % (stride * size):
            raise ValueError(f"ReplicaGrouping(stride={stride}, group_size={size}) does not tile {num_replicas} "
                             "replicas: stride * group_size must divide the replication factor")
        self.num_replicas, self.stride, self.group_size = num_replicas, stride, size

    @property
    def num_groups(self) -> int:
        return self.num_replicas // self.group_size

    @property
    def assignment(self) -> list[int]:
        """The group index of each replica."""
        return [group_index(r, self.stride, self.group_size) for r in range(self.num_replicas)]

    @property
    def key(self) -> tuple[int, int]:
        return (self.stride, self.group_size)

    def transpose(self) -> "ReplicaGrouping":
        """The grouping whose groups take one member from each of this one's groups."""
        if self.num_groups == 1:
            return ReplicaGrouping(self.num_replicas, 1, 1)
        if self.stride == 1:
            return ReplicaGrouping(self.num_replicas, self.group_size, self.num_groups)
        if self.stride * self.group_size == self.num_replicas:
            return ReplicaGrouping(self.num_replicas, 1, self.stride)
        raise ValueError(f"{self} has no transpose that is a ReplicaGrouping")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ReplicaGrouping) and (self.num_replicas, self.key) == (other.num_replicas, other.key)

    def __hash__(self) -> int:
        return hash((self.num_replicas, self.key))

    def __repr__(self) -> str:
        return (f"ReplicaGrouping(num_replicas={self.num_replicas}, stride={self.stride}, "
                f"group_size={self.group_size})")
