"""`cfg.device` / `--device` resolved in one place, for the generation, judge, score and calibration code alike."""

from __future__ import annotations

import os
from collections.abc import Mapping


def resolve_device(requested: str | None, env: Mapping[str, str] | None = None) -> str:
    """'auto' (or None) is the GPU of this rank (LOCAL_RANK / SLURM_LOCALID) when there is one, else cpu;
    anything else is returned unchanged."""
    if requested not in (None, "auto"):
        return requested
    import torch

    if not torch.cuda.is_available():
        return "cpu"
    env = os.environ if env is None else env
    local = int(env.get("LOCAL_RANK", env.get("SLURM_LOCALID", 0)))
    return f"cuda:{local % torch.cuda.device_count()}"
