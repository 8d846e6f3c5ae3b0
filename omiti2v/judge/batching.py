"""How many samples the judge runs together: planned from free memory, split again on a CUDA out-of-memory.

A batch of n samples holds, per sample, one KV cache row over its longest row (prefix + the longest thing either
mode puts after it) and, while the prefix runs, that row's transient activations and its attention mask. The
planner adds those up from the loaded model's shapes and each sample's actual token counts (videos differ in
length) and packs consecutive samples while they fit in the free memory. It is an estimate: when a batch still
runs out of memory it is halved and retried, and the log says so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

log = logging.getLogger(__name__)

SAFETY = 0.85  # share of the free memory the plan may fill (allocator fragmentation, kernels' workspaces)


@dataclass(frozen=True)
class RowTokens:
    """One sample's token counts: its video prefix, and the longest row either mode appends to it."""

    prefix: int
    tail: int


@dataclass(frozen=True)
class MemoryCosts:
    """Bytes a batch row costs, from the model's shapes."""

    kv_per_token: int  # layers x KV heads x head dim x 2 (keys and values) x dtype bytes
    activation_per_token: int  # the largest transient of one layer while the prefix runs (LLM or vision tower)
    mask_per_entry: int  # a (rows, 1, L, L) attention mask: bool, and the kernel's copy in the compute dtype

    @classmethod
    def of_config(cls, config, dtype: torch.dtype) -> MemoryCosts:
        """From a judge's config (text_config and vision_config) and the weights' dtype."""
        text, vision = config.text_config, config.vision_config
        size = torch.empty((), dtype=dtype).element_size()
        head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
        kv = text.num_hidden_layers * text.num_key_value_heads * head_dim * 2 * size
        llm = (3 * text.intermediate_size + 6 * text.hidden_size) * size  # gate, up, their product; residual, q/k/v/o
        # vision patches per LLM token: Qwen's spatial merge (one frame pair), InternVL's pixel shuffle (one frame)
        merge = vision.spatial_merge_size ** 2 if hasattr(vision, "spatial_merge_size") else round(config.downsample_ratio ** -2)
        tower = merge * (3 * vision.intermediate_size + 6 * vision.hidden_size) * size
        return cls(kv, max(llm, tower), 1 + size)


@dataclass(frozen=True)
class BatchPlanner:
    """Packs consecutive samples into batches whose estimated memory fits `budget_bytes`."""

    costs: MemoryCosts
    budget_bytes: int
    max_samples: int = 32

    def batch_bytes(self, rows: Sequence[RowTokens]) -> int:
        """Every row padded to the batch's longest prefix plus its longest tail."""
        width = max(r.prefix for r in rows) + max(r.tail for r in rows)
        c = self.costs
        return len(rows) * (width * (c.kv_per_token + c.activation_per_token) + width * width * c.mask_per_entry)

    def plan(self, rows: Sequence[RowTokens]) -> list[list[int]]:
        """Batches of sample indices, in order; a sample too large for the budget still gets a batch of its own."""
        batches: list[list[int]] = []
        for i, _ in enumerate(rows):
            current = batches[-1] if batches else None
            if current and len(current) < self.max_samples and \
                    self.batch_bytes([rows[j] for j in (*current, i)]) <= self.budget_bytes:
                current.append(i)
            else:
                batches.append([i])
        return batches


def fixed_plan(n: int, size: int) -> list[list[int]]:
    """`judge.batch_samples: N`: consecutive batches of N samples."""
    return [list(range(i, min(i + size, n))) for i in range(0, n, size)]


def free_memory_bytes(model) -> int:
    """Memory the judge may still use: on CUDA the free device memory plus the allocator's unused cache, capped by
    the per-process fraction (torch.cuda.set_per_process_memory_fraction); with the model split over several
    GPUs, the tightest one times their number (the cache splits by layers). On CPU: the available RAM."""
    devices = sorted({p.device for p in model.parameters() if p.device.type == "cuda"}, key=str)
    if not devices:
        import psutil

        return int(psutil.virtual_memory().available)
    per_device = []
    for d in devices:
        free, total = torch.cuda.mem_get_info(d)
        allocated = torch.cuda.memory_allocated(d)
        cached = torch.cuda.memory_reserved(d) - allocated
        cap = torch.cuda.get_per_process_memory_fraction(d) * total - allocated
        per_device.append(min(free + cached, cap))
    return int(min(per_device) * len(devices))


def planner_for(model, max_samples: int = 32) -> BatchPlanner:
    """The planner for a loaded judge model, measured now (call it after loading, before the first batch)."""
    dtype = next(model.parameters()).dtype
    return BatchPlanner(MemoryCosts.of_config(model.config, dtype), int(SAFETY * free_memory_bytes(model)), max_samples)


def split_on_oom(run: Callable[[Sequence], list], items: Sequence, what: str = "batch") -> list:
    """`run(items)` (one result per item), halving the batch and retrying on CUDA out of memory (logged). An item
    that alone still runs out of memory gets a RuntimeError as its result, so the other items go on."""
    try:
        return run(items)
    except torch.OutOfMemoryError as exc:
        message = str(exc).splitlines()[0] if str(exc) else "CUDA out of memory"
    # retried outside the except block, so the failed attempt's tensors (held by the traceback) are freed first
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    if len(items) == 1:
        log.error("judge: CUDA out of memory on a single sample of a %s: %s", what, message)
        return [RuntimeError(f"CUDA out of memory on this sample alone: {message}")]
    half = len(items) // 2
    log.warning("judge: CUDA out of memory on a %s of %d samples; retrying as %d + %d", what, len(items), half,
                len(items) - half)
    return split_on_oom(run, items[:half], what) + split_on_oom(run, items[half:], what)
