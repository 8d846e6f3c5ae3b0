"""`apply_asm`: install ASM on a pipeline or transformer as removable hooks.

Scalar ASM (the paper's method) runs as Q/K output hooks found by role on any diffusers transformer
(`omiti2v.asm.scaling`, `omiti2v.asm.sites`); it works under `torch.compile`. The energy and key-blur strategies
read the post-RoPE query and key of each attention call, so they intercept the attention function of the
processors (`omiti2v.asm.processors`); they run under `torch.compile` too.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from omiti2v.asm.blur import KeyBlur
from omiti2v.asm.config import ASMConfig
from omiti2v.asm.energy import EnergyModulation
from omiti2v.asm.lifecycle import CALLS, StepGate
from omiti2v.asm.processors import STRENGTH, find_attention_sites, intercept_attention
from omiti2v.asm.scaling import ScaledAttention
from omiti2v.asm.sites import describe_sites, find_scaling_sites

logger = logging.getLogger(__name__)

INTERCEPTING_STRATEGIES = {"energy": EnergyModulation, "blur_key": KeyBlur}


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


def check_blocks(transformer: torch.nn.Module, config: ASMConfig, blocks: list[int]) -> None:
    """Explicit block lists must exist in the model; a preset's longer BGS list is trimmed (logged)."""
    available = max(blocks) + 1
    if isinstance(config.blocks, tuple) and max(config.blocks, default=-1) >= available:
        raise ValueError(f"ASMConfig.blocks {config.blocks} out of range: {type(transformer).__name__} has "
                         f"{available} blocks with sites {config.sites}")
    if config.blocks == "preset" and config.preset_blocks and max(config.preset_blocks) >= available:
        logger.info("preset %s lists blocks up to %d; the model has %d, the rest are ignored",
                    config.preset_name, max(config.preset_blocks), available)


def no_site_error(transformer: torch.nn.Module, config: ASMConfig, found: str) -> ValueError:
    return ValueError(f"ASM sites {config.sites} (preset {config.preset_name!r}) match no attention in "
                      f"{type(transformer).__name__}; its attention sites: {found}")


def install_scaling(transformer: torch.nn.Module, config: ASMConfig) -> ScaledAttention:
    """Scalar ASM on `transformer`: hooks on every block of each stack holding a touched site, factors in the
    selected blocks (see `omiti2v.asm.scaling` for why every block is hooked)."""
    sites = find_scaling_sites(transformer)
    config = config.with_default_sites({role for site in sites for role in site.roles})
    touched = [s for s in sites if set(s.roles) & set(config.sites)]
    if not touched:
        raise no_site_error(transformer, config, describe_sites(sites))
    check_blocks(transformer, config, [s.block for s in touched])
    selected = [s for s in touched if config.block_selected(s.block)]
    return ScaledAttention(transformer, config, touched, selected)


class InterceptedAttention(StepGate):
    """Energy / key-blur ASM on one transformer, through the intercepting processors, on the lifecycle of
    `StepGate`.

    Every attention of a stack holding a touched site is intercepted, and each gets a `STRENGTH` buffer (one
    value per attention call): the strategy's strength at the selected blocks' modulated calls inside the
    window, its identity everywhere else. Under `torch.compile` the blocks then trace to one graph for every
    block and step."""

    def __init__(self, transformer: torch.nn.Module, config: ASMConfig):
        found = find_attention_sites(transformer)
        config = config.with_default_sites({role for site in found for role in site.sites})
        candidates = [s for s in found if set(s.sites) & set(config.sites)]
        if not candidates:
            raise no_site_error(transformer, config, describe_sites(find_scaling_sites(transformer)))
        check_blocks(transformer, config, [s.block for s in candidates])
        strategy = INTERCEPTING_STRATEGIES[config.strategy]
        super().__init__(transformer, config, STRENGTH, strategy.identity)
        stacks = {s.module_name.split(".", 1)[0] for s in candidates}
        hooked = [s for s in found if s.module_name.split(".", 1)[0] in stacks]
        selected = [s for s in hooked if config.block_selected(s.block)]
        modulated = [s for s in selected if set(s.sites) & set(config.sites)]
        self.blocks = sorted({s.block for s in modulated})
        self.module_names = [s.module_name for s in modulated]
        handler = strategy(config)

        def counted(call: Any) -> None:
            getattr(call.module, CALLS).select(0, call.index).add_(1)
            handler(call)

        with self.installing():
            for site in hooked:
                self.add(site.module, site.module_name, calls=len(site.sites))
            for site in selected:
                self.select(site.module, tuple(strategy.strength(config, role) for role in site.sites))
                for index, role in enumerate(site.sites):
                    if role in config.sites:
                        self.witness(f"{site.module_name} ({role})", site.module, index)
            self.keep(intercept_attention(hooked, counted))


class ASMHandle:
    """Installed ASM; `remove()` (or leaving the `with` block) restores the model exactly as it was."""

    def __init__(self, config: ASMConfig, parts: list[ScaledAttention | InterceptedAttention]):
        self.config = config
        self._parts = parts

    @property
    def module_names(self) -> list[str]:
        """Qualified names of the attention modules being modulated."""
        return [name for part in self._parts for name in part.module_names]

    @property
    def timestep(self) -> float | None:
        """Timestep (gating rule of `omiti2v.asm.gating`) of the latest transformer call."""
        return self._parts[0].current if self._parts else None

    def logit_multipliers(self) -> dict[tuple[str, str], float]:
        """Scalar ASM: {(attention module, role): logit factor} of the latest forward (see `ScaledAttention`)."""
        return {key: value for part in self._parts if isinstance(part, ScaledAttention)
                for key, value in part.logit_multipliers().items()}

    def record(self) -> dict[str, Any]:
        """`ASMConfig.record` of what is installed: the sites as resolved on the model (a preset-less config gets
        the model's default recipe) and the blocks that exist in it (a longer preset list is trimmed)."""
        config = self._parts[0].config if self._parts else self.config
        return config.record(sorted({block for part in self._parts for block in part.blocks}))

    def remove(self) -> None:
        for part in self._parts:
            part.remove()
        self._parts = []

    def __enter__(self) -> ASMHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def apply_asm(pipe_or_transformer: Any, config: ASMConfig) -> ASMHandle:
    """Install `config` on every denoiser of `pipe_or_transformer`; strategy "none" installs nothing."""
    if config.strategy == "none":
        return ASMHandle(config, [])
    parts: list[ScaledAttention | InterceptedAttention] = []
    try:
        for transformer in transformers_of(pipe_or_transformer):
            parts.append(install_scaling(transformer, config) if config.strategy == "scalar"
                         else InterceptedAttention(transformer, config))
    except Exception:
        for part in parts:
            part.remove()
        raise
    return ASMHandle(config, parts)
