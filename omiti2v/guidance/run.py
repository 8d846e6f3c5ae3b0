"""The generation stage's use of the guidance group: install the run's method and describe the run as one point
of the methods comparison (`omiti2v.guidance.record`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omiti2v.guidance.adapter import GuidanceHandle, apply_guidance
from omiti2v.guidance.config import GuidanceConfig
from omiti2v.guidance.methods import forwards_per_step
from omiti2v.guidance.record import method_record
from omiti2v.runs import to_plain


def run_guidance(cfg: Any, sampling: Mapping) -> GuidanceConfig:
    """The run's `guidance` group (absent: none), resolved against the model's sampling settings."""
    config = GuidanceConfig.from_hydra(to_plain(cfg.get("guidance")))
    return config.resolved(float(sampling.get("guidance_scale", 1.0) or 1.0), sampling.get("negative_prompt"))


def install_run_guidance(pipe: Any, cfg: Any, baseline: Any, settings: Mapping,
                         asm_config: Any) -> tuple[GuidanceHandle | None, dict]:
    """(the installed handle, or None for method none; the run's `method` record). `asm_config`: the installed
    ASMConfig, None without ASM."""
    sampling = settings["sampling"]
    config = run_guidance(cfg, sampling)
    handle = apply_guidance(pipe, config) if config.active else None
    config = handle.config if handle is not None else config  # stg / pag: the blocks fitted to the model
    steps = int(sampling["num_inference_steps"])
    forwards = forwards_per_step(config, steps) if config.active else baseline.forwards_per_step(sampling)
    asm = cfg.get("asm") or {}
    gamma = max(asm_config.gamma_q, asm_config.gamma_k) if asm_config is not None else None
    return handle, method_record(asm.get("name"), asm.get("strategy"), gamma, config, forwards)
