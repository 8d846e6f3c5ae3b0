"""`generation.compile`: regional torch.compile of the denoiser's repeated blocks (diffusers' recipe).

Config: top-level `generation.compile` in conf/config.yaml (default "none"), and `generation.compile_backend`
(torch.compile's backend, "inductor"; tests use "aot_eager"). It is recorded in every sidecar
and in summary.json (`run.compile`), not in the generation config hash: compiled and eager videos differ by
float rounding only, so switching it does not start a new run folder. "none" runs eagerly; "regional" compiles each block of the transformer's top-level block stacks with
`fullgraph=True` (diffusers' `compile_repeated_blocks` where the model declares its repeated blocks, the same
per-block compile otherwise: FramePack and EasyAnimate do not declare them; beneath the hooks under TeaCache).
Apply it after ASM: every strategy is compile-friendly (`omiti2v.asm.scaling`, `omiti2v.asm.processors`).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import torch

from omiti2v.cache import teacache_handle
from omiti2v.compat.diffusers import repeated_block_classes

from .options import COMPILE_MODES

log = logging.getLogger(__name__)
_logged_compile = False


def compile_settings(cfg: Any) -> tuple[str, str]:
    """(`generation.compile`, `generation.compile_backend`) of a run config; ("none", "inductor") if absent."""
    generation = cfg.get("generation") or {}
    return str(generation.get("compile") or "none"), str(generation.get("compile_backend") or "inductor")


def compile_regions(transformer: torch.nn.Module, **compile_kwargs: Any) -> int:
    """Compile every block of `transformer`'s top-level block stacks in place; returns how many. Under TeaCache
    the blocks' own forwards are compiled beneath its hooks, which stay eager (`omiti2v.cache.teacache`)."""
    teacache = teacache_handle(transformer)
    if teacache is not None:
        return teacache.compile_blocks(**compile_kwargs)
    names = repeated_block_classes(transformer)
    if names:
        transformer.compile_repeated_blocks(**compile_kwargs)
        return sum(type(m).__name__ in names for m in transformer.modules())
    count = 0
    for stack in transformer.children():
        if isinstance(stack, torch.nn.ModuleList):
            for block in stack:
                block.compile(**compile_kwargs)
                count += 1
    if not count:
        raise ValueError(f"{type(transformer).__name__} has no block stack to compile")
    return count


class _FirstCallTimer:
    """Logs how long the first compiled forward took (tracing + compiling + running), then removes itself."""

    def __init__(self, transformer: torch.nn.Module, blocks: int):
        self.blocks = blocks
        self.started = 0.0
        self._hooks = [transformer.register_forward_pre_hook(self._start),
                       transformer.register_forward_hook(self._stop)]

    def _start(self, module: torch.nn.Module, args: tuple) -> None:
        self.started = time.perf_counter()

    def _stop(self, module: torch.nn.Module, args: tuple, output: Any) -> None:
        log.info("generation.compile=regional: first forward of %s (%d compiled blocks) took %.1fs incl. compiling",
                 type(module).__name__, self.blocks, time.perf_counter() - self.started)
        for hook in self._hooks:
            hook.remove()


def apply_compile(transformer: torch.nn.Module, mode: str, **compile_kwargs: Any) -> None:
    """Apply `generation.compile` = `mode` to `transformer` (after ASM is installed); the compile time is
    logged once per process, at the first forward."""
    if mode not in COMPILE_MODES:
        raise ValueError(f"generation.compile={mode!r}; expected one of {COMPILE_MODES}")
    if mode == "none":
        return
    global _logged_compile
    blocks = compile_regions(transformer, fullgraph=True, **compile_kwargs)
    if not _logged_compile:
        _FirstCallTimer(transformer, blocks)
        _logged_compile = True
