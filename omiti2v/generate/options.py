"""The generation's run-level options (`generation.*`, `shard`, `parallel.*`, `plan.*`) and what each must be,
read by compile.py, sharding.py, parallel.py and the planner, and by the config check before anything loads."""

from __future__ import annotations

from ..config_rules import number, one_of
from .sharding import parse_shard

COMPILE_MODES = ("none", "regional")  # regional: torch.compile of the repeated blocks, after ASM
PARALLEL_MODES = ("ulysses", "ring")  # ulysses: heads split by all-to-all; ring: keys passed round

CONFIG_RULES = {
    "generation.compile": one_of(*COMPILE_MODES),
    "parallel.context": number(ge=1, integer=True),
    "parallel.mode": one_of(*PARALLEL_MODES),
    "plan.samples": number(ge=1, integer=True, nullable=True),
    "plan.repeats": number(ge=1, integer=True),
    # read with a default (planner.py): FramePack's share of transformer calls that run with TeaCache on
    "plan.teacache_computed_fraction": number(gt=0, le=1),
}


def config_problems(cfg) -> list[str]:
    shard = cfg.get("shard")
    if shard is None:
        return []
    try:
        parse_shard(str(shard))
    except ValueError as exc:
        return [str(exc)]
    return []
