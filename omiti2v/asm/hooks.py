"""`apply_asm`: install ASM on a pipeline or transformer as removable hooks.

Scalar ASM (the paper's method) runs as Q/K output hooks found by role on any diffusers transformer
(`omiti2v.asm.scaling`, `omiti2v.asm.sites`); it works under `torch.compile`. The energy and key-blur strategies
read the post-RoPE query and key of each attention call, so they still intercept the attention function of
the six supported processor families (`omiti2v.asm.processors`) and run eagerly only.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from omiti2v.asm.blur import KeyBlur
from omiti2v.asm.config import ASMConfig
from omiti2v.asm.energy import EnergyModulation
from omiti2v.asm.gating import TimestepTracker
from omiti2v.asm.processors import InterceptionHandle, find_attention_sites, intercept_attention
from omiti2v.asm.scaling import ScaledAttention, raise_if_bypassed
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


class InterceptedAttention(TimestepTracker):
    """Energy / key-blur ASM on one transformer, through the intercepting processors; counts the calls of
    each selected site and applies the bypass rule of `omiti2v.asm.scaling` after in-window forwards."""

    def __init__(self, transformer: torch.nn.Module, config: ASMConfig):
        candidates = [s for s in find_attention_sites(transformer) if set(s.sites) & set(config.sites)]
        if not candidates:
            raise no_site_error(transformer, config, describe_sites(find_scaling_sites(transformer)))
        check_blocks(transformer, config, [s.block for s in candidates])
        super().__init__(transformer)
        self.config = config
        selected = [s for s in candidates if config.block_selected(s.block)]
        self.blocks = sorted({s.block for s in selected})
        self._counts = {(s.module_name, site): 0 for s in selected for site in s.sites if site in config.sites}
        self._seen_in_window = False
        handler = INTERCEPTING_STRATEGIES[config.strategy](config, self)

        def counted(call: Any) -> None:
            if (call.module_name, call.site) in self._counts:
                self._counts[(call.module_name, call.site)] += 1
            handler(call)

        self._interception: InterceptionHandle = intercept_attention(selected, counted)
        self._check_hook = transformer.register_forward_hook(self._check)

    def _record(self, module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        super()._record(module, args, kwargs)
        self._counts = dict.fromkeys(self._counts, 0)

    def _check(self, module: torch.nn.Module, args: tuple, output: Any) -> None:
        if self._counts and self.config.step_active(self.current):
            names = [f"{name} ({site})" for name, site in self._counts]
            self._seen_in_window = raise_if_bypassed(module, self.current, names, list(self._counts.values()),
                                                     self._seen_in_window)

    @property
    def module_names(self) -> list[str]:
        return self._interception.module_names

    def remove(self) -> None:
        self._interception.remove()
        self._check_hook.remove()
        super().remove()


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
