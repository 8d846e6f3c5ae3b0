"""`apply_asm`: install ASM on a pipeline or transformer as removable hooks."""

from __future__ import annotations

import logging
from typing import Any

import torch

from omiti2v.asm.blur import KeyBlur
from omiti2v.asm.config import ASMConfig
from omiti2v.asm.energy import EnergyModulation
from omiti2v.asm.gating import TimestepTracker
from omiti2v.asm.processors import (
    AttentionSite,
    InterceptionHandle,
    find_attention_sites,
    intercept_attention,
)
from omiti2v.asm.scalar import ScalarModulation

logger = logging.getLogger(__name__)

STRATEGY_HANDLERS = {"scalar": ScalarModulation, "energy": EnergyModulation, "blur_key": KeyBlur}


def transformers_of(pipe_or_transformer: Any) -> list[torch.nn.Module]:
    """The denoiser(s) of a diffusers pipeline (`transformer`, and `transformer_2` where set), or the module."""
    if isinstance(pipe_or_transformer, torch.nn.Module):
        return [pipe_or_transformer]
    found = [getattr(pipe_or_transformer, name, None) for name in ("transformer", "transformer_2")]
    found = [m for m in found if isinstance(m, torch.nn.Module)]
    if not found:
        raise TypeError(f"{type(pipe_or_transformer).__name__} is neither a torch module nor a pipeline with a "
                        "`transformer`")
    return found


def select_sites(transformer: torch.nn.Module, config: ASMConfig) -> list[AttentionSite]:
    """The attention modules `config` modulates: a touched site, in a selected block."""
    candidates = [s for s in find_attention_sites(transformer) if set(s.sites) & set(config.sites)]
    if not candidates:
        raise ValueError(f"ASM sites {config.sites} (preset {config.preset_name!r}) match no attention in "
                         f"{type(transformer).__name__}")
    if isinstance(config.blocks, tuple):
        available = max(s.block for s in candidates) + 1
        if max(config.blocks, default=-1) >= available:
            raise ValueError(f"ASMConfig.blocks {config.blocks} out of range: {type(transformer).__name__} has "
                             f"{available} blocks with sites {config.sites}")
    elif config.blocks == "preset" and config.preset_blocks:
        available = max(s.block for s in candidates) + 1
        if max(config.preset_blocks) >= available:
            logger.info("preset %s lists blocks up to %d; the model has %d, the rest are ignored",
                        config.preset_name, max(config.preset_blocks), available)
    return [s for s in candidates if config.block_selected(s.block)]


class ASMHandle:
    """Installed ASM; `remove()` (or leaving the `with` block) restores the exact original processors."""

    def __init__(self, config: ASMConfig, parts: list[tuple[TimestepTracker, InterceptionHandle]]):
        self.config = config
        self._parts = parts

    @property
    def module_names(self) -> list[str]:
        """Qualified names of the attention modules being modulated."""
        return [name for _, interception in self._parts for name in interception.module_names]

    @property
    def timestep(self) -> float | None:
        """Timestep (gating rule of `omiti2v.asm.gating`) of the latest transformer call."""
        return self._parts[0][0].current if self._parts else None

    def remove(self) -> None:
        for tracker, interception in self._parts:
            interception.remove()
            tracker.remove()
        self._parts = []

    def __enter__(self) -> ASMHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def apply_asm(pipe_or_transformer: Any, config: ASMConfig) -> ASMHandle:
    """Install `config` on every denoiser of `pipe_or_transformer`; strategy "none" installs nothing."""
    if config.strategy == "none":
        return ASMHandle(config, [])
    parts = []
    for transformer in transformers_of(pipe_or_transformer):
        sites = select_sites(transformer, config)
        tracker = TimestepTracker(transformer)
        handler = STRATEGY_HANDLERS[config.strategy](config, tracker)
        parts.append((tracker, intercept_attention(sites, handler)))
    return ASMHandle(config, parts)
