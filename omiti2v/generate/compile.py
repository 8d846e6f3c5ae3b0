"""`generation.compile`: regional torch.compile of the denoiser's repeated blocks (diffusers' recipe).

"none" runs eagerly; "regional" compiles each block of the transformer's top-level block stacks with
`fullgraph=True` (diffusers' `compile_repeated_blocks` where the model declares `_repeated_blocks`, the same
per-block compile otherwise: FramePack and EasyAnimate do not declare them). Apply it after ASM: scalar ASM is
compile-friendly (`omiti2v.asm.scaling`); the energy and key-blur strategies are not, and are refused.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import torch

COMPILE_MODES = ("none", "regional")
log = logging.getLogger(__name__)
_logged_compile = False


def compile_regions(transformer: torch.nn.Module, **compile_kwargs: Any) -> int:
    """Compile every block of `transformer`'s top-level block stacks in place; returns how many."""
    if getattr(transformer, "_repeated_blocks", None):
        transformer.compile_repeated_blocks(**compile_kwargs)
        names = set(transformer._repeated_blocks)
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


def apply_compile(transformer: torch.nn.Module, mode: str, asm_strategy: str | None = None,
                  **compile_kwargs: Any) -> None:
    """Apply `generation.compile` = `mode` to `transformer` (after ASM is installed)."""
    if mode not in COMPILE_MODES:
        raise ValueError(f"generation.compile={mode!r}; expected one of {COMPILE_MODES}")
    if mode == "none":
        return
    if asm_strategy in ("energy", "blur_key"):
        raise ValueError(f"generation.compile=regional does not support asm.strategy={asm_strategy} (it intercepts "
                         "the attention function eagerly); use generation.compile=none")
    global _logged_compile
    t0 = time.perf_counter()
    blocks = compile_regions(transformer, fullgraph=True, **compile_kwargs)
    if not _logged_compile:  # torch.compile is lazy: this is the wrapping; graphs compile on the first call
        log.info("generation.compile=regional: %d blocks of %s wrapped in %.2fs (graphs compile on the first step)",
                 blocks, type(transformer).__name__, time.perf_counter() - t0)
        _logged_compile = True
