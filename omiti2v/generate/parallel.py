"""Several GPUs: data-parallel ranks (one shard each) and context parallelism (one video over N GPUs).

Under torchrun (RANK/WORLD_SIZE) or Slurm tasks (SLURM_PROCID/SLURM_NTASKS) the W processes form W / N
groups of `parallel.context` = N consecutive ranks. Each group takes one data shard (round-robin, see
`sharding`); within a group every rank runs the same sample with the same seed, diffusers' context
parallelism (`enable_parallelism` with a `ContextParallelConfig`) splitting the transformer's tokens over the
group, and only the group's first rank (the writer) writes videos, sidecars and log lines.

ASM under context parallelism: Wan's cross-attention is not split (every rank attends its own query tokens to
all text/image keys), and in the split self-attention gamma multiplies q or k per token and head before the
all-to-all (Ulysses) or the key exchange (ring); both keep the per-head logit scaling exact, and step gating
reads the transformer's unsplit `timestep`. Energy ASM is refused: its entropy is a mean over the queries a
rank holds, which are 1/N of them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from omiti2v.errors import SetupError

from .options import PARALLEL_MODES as MODES
from .sharding import Shard, parse_shard, resolve_shard

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Layout:
    """This process's place: global rank/world, and the size of its context-parallel group."""

    rank: int = 0
    world: int = 1
    context: int = 1
    source: str = "single"  # torchrun | slurm | single
    data_shard: Shard | None = None  # an explicit `shard=i/n` (then the whole launch is one group)

    def __post_init__(self) -> None:
        if self.context < 1 or self.world % self.context:
            raise SetupError(f"parallel.context={self.context} must divide the number of processes ({self.world})")

    @property
    def group(self) -> int:
        return self.rank // self.context

    @property
    def writer(self) -> bool:
        """The first rank of its group writes; the others compute the same video and discard it."""
        return self.rank % self.context == 0

    @property
    def group_ranks(self) -> list[int]:
        return list(range(self.group * self.context, (self.group + 1) * self.context))

    @property
    def shard(self) -> Shard:
        if self.data_shard is not None:
            return self.data_shard
        return Shard(self.group, self.world // self.context, self.source if self.world > 1 else "single")


def parallel_settings(cfg: Mapping) -> dict:
    """`cfg.parallel` with defaults (configs without the block run on one GPU per video)."""
    given = dict(cfg.get("parallel") or {})
    settings = {"context": 1, "mode": "ulysses", "attention_backend": None, "timeout_min": 1440, **given}
    if settings["mode"] not in MODES:
        raise SetupError(f"parallel.mode: expected one of {MODES}, got {settings['mode']!r}")
    settings["context"] = int(settings["context"])
    return settings


def resolve_layout(cfg: Mapping, env: Mapping[str, str] | None = None) -> Layout:
    """Rank and world from torchrun or Slurm (as `resolve_shard`), grouped by `parallel.context`."""
    context = parallel_settings(cfg)["context"]
    launch = resolve_shard(None, env)
    rank, world, source = launch.rank, launch.world, launch.source
    explicit = cfg.get("shard")
    if explicit not in (None, ""):
        if world != context:
            raise SetupError(f"shard={explicit} with {world} processes of context {context}: give either an "
                             "explicit shard or several data-parallel ranks, not both")
        return Layout(rank, world, context, source, parse_shard(explicit))
    return Layout(rank, world, context, source)


_GROUPS: dict[str, Any] = {}


def start(layout: Layout, settings: Mapping, stages: list[str]) -> None:
    """Join the process group when one is needed: context parallelism, or stages after 'generate' (they run
    once, on rank 0, after every rank has generated). `settings`: parallel_settings. Idempotent."""
    needed = layout.world > 1 and (layout.context > 1 or any(s != "generate" for s in stages))
    if needed:
        _init_process_group(layout, settings["timeout_min"])


def _init_process_group(layout: Layout, timeout_min: float) -> None:
    import torch
    import torch.distributed as dist

    if dist.is_initialized():
        return
    if "MASTER_ADDR" not in os.environ or "MASTER_PORT" not in os.environ:
        raise SetupError(f"{layout.world} {layout.source} processes need MASTER_ADDR and MASTER_PORT to meet "
                         "(torchrun sets them; under srun export the first host of $SLURM_JOB_NODELIST and a port)")
    cuda = torch.cuda.is_available()
    if cuda:
        local = int(os.environ.get("LOCAL_RANK", os.environ.get("SLURM_LOCALID", 0)))
        torch.cuda.set_device(local % torch.cuda.device_count())
    dist.init_process_group("cpu:gloo,cuda:nccl" if cuda else "gloo", rank=layout.rank, world_size=layout.world,
                            timeout=timedelta(minutes=30))
    # Finished ranks wait at the end for the slowest one: a CPU group whose timeout is the run's, not NCCL's.
    _GROUPS["barrier"] = dist.new_group(backend="gloo", timeout=timedelta(minutes=timeout_min))
    for group in range(layout.world // layout.context):  # every rank creates every group, in the same order
        ranks = list(range(group * layout.context, (group + 1) * layout.context))
        handle = dist.new_group(ranks=ranks, backend="gloo")
        if layout.rank in ranks:
            _GROUPS["context"] = handle


def wait_for_all(layout: Layout) -> None:
    """Barrier over every rank (no-op for one process)."""
    import torch.distributed as dist

    if layout.world > 1 and dist.is_initialized():
        dist.barrier(group=_GROUPS["barrier"])


def share_from_writer(layout: Layout, value: Any) -> Any:
    """The writer's `value` on every rank of its group; an exception is re-raised on every rank."""
    if layout.context == 1:
        if isinstance(value, BaseException):
            raise value
        return value
    import torch.distributed as dist

    box = [value]
    dist.broadcast_object_list(box, src=layout.group_ranks[0], group=_GROUPS["context"])
    if isinstance(box[0], BaseException):
        raise box[0]
    return box[0]


def check_asm_supported(asm: Mapping | None) -> None:
    """Refuse ASM strategies whose result would depend on how the tokens are split."""
    strategy = (asm or {}).get("strategy", "none")
    if strategy == "energy":
        raise SetupError("asm=energy with parallel.context > 1: its entropy is averaged over the queries each "
                         "rank holds, so the video would depend on the number of GPUs; use one GPU per video")
    if strategy == "blur_key" and "self" in ((asm or {}).get("k_sites") or ()):
        raise SetupError("asm=blur-key on self-attention keys with parallel.context > 1: the blur would stop at "
                         "each rank's token boundary; use one GPU per video")


def enable_context_parallel(pipe: Any, layout: Layout, settings: Mapping) -> list[str]:
    """diffusers' context parallelism on every denoiser of `pipe`; returns the names of the modules."""
    import torch
    from diffusers import ContextParallelConfig
    from torch.distributed.device_mesh import init_device_mesh

    from omiti2v.asm.hooks import transformers_of
    from omiti2v.compat.diffusers import has_context_parallel_plan
    from omiti2v.compat.torch import accelerator_count_at_least_one

    n, mode = layout.context, settings["mode"]
    device_type = "cuda" if torch.cuda.is_available() else "cpu"
    ring, ulysses = (n, 1) if mode == "ring" else (1, n)
    mesh = init_device_mesh(device_type, (layout.world // n, ring, ulysses), mesh_dim_names=("data", "ring", "ulysses"))
    names = []
    for transformer in transformers_of(pipe):
        if not has_context_parallel_plan(transformer):
            raise SetupError(f"parallel.context={n}: {type(transformer).__name__} has no context-parallel plan in "
                             "diffusers (Wan2.1/2.2 have one); use one GPU per video")
        if settings.get("attention_backend"):
            transformer.set_attention_backend(settings["attention_backend"])
        config = ContextParallelConfig(ring_degree=ring, ulysses_degree=ulysses, mesh=mesh)
        with accelerator_count_at_least_one():
            transformer.enable_parallelism(config=config)
        names.append(type(transformer).__name__)
    log.info("context parallelism (%s, %d ranks) on %s", mode, n, ", ".join(names))
    return names
