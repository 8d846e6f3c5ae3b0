"""Which samples this process generates: rank/world from an explicit `shard=i/n`, torchrun or Slurm.

Assignment is round-robin over the benchmark's order (sample k goes to rank k mod n): deterministic, disjoint,
the union is the whole set, and every rank gets a similar mix of categories.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Shard:
    rank: int = 0
    world: int = 1
    source: str = "single"  # where rank/world came from: config | torchrun | slurm | single

    def __post_init__(self) -> None:
        if self.world < 1 or not 0 <= self.rank < self.world:
            raise ValueError(f"shard: need 0 <= rank < world, got rank={self.rank} world={self.world}")

    def select(self, ids: Sequence[str]) -> list[str]:
        return [sid for k, sid in enumerate(ids) if k % self.world == self.rank]

    def __str__(self) -> str:
        return f"{self.rank}/{self.world}"


def parse_shard(text: str) -> Shard:
    """`"i/n"` (0-based rank i of n) as given by `shard=i/n` on the command line."""
    try:
        rank, world = (int(part) for part in str(text).split("/"))
    except ValueError as exc:
        raise ValueError(f"shard: expected 'i/n' such as 0/4, got {text!r}") from exc
    return Shard(rank, world, "config")


def resolve_shard(explicit: str | None = None, env: Mapping[str, str] | None = None) -> Shard:
    """The explicit config value wins, then torchrun (RANK/WORLD_SIZE), then Slurm (SLURM_PROCID/SLURM_NTASKS)."""
    env = os.environ if env is None else env
    if explicit not in (None, ""):
        return parse_shard(explicit)
    if "WORLD_SIZE" in env and "RANK" in env:
        return Shard(int(env["RANK"]), int(env["WORLD_SIZE"]), "torchrun")
    if "SLURM_NTASKS" in env and "SLURM_PROCID" in env:
        return Shard(int(env["SLURM_PROCID"]), int(env["SLURM_NTASKS"]), "slurm")
    return Shard()
