"""Attention-entropy probe: mean entropy per (site, block, timestep) of any supported transformer.

    with EntropyProbe(pipe, max_queries=256) as probe:
        pipe(...)
    probe.entropy()        # {(site, block, timestep): mean entropy in nats}
    probe.records()        # rows for pandas / JSONL: site, block, timestep, entropy, normalized_entropy, calls

Each attention call contributes the mean over batch, heads and `max_queries` strided queries of the exact
per-query entropy (chunked; no N x N matrix; `max_queries=None` = every query). Calls at the same key (CFG's
two passes, repeated FramePack sections) are averaged. The probe sees the logits actually used, so inside an
`apply_asm` block it measures the modulated attention. Sums stay on the device until read: no host sync per
call beyond the timestep read of the gating hook.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from omiti2v.asm.entropy import attention_entropy, normalized_entropy
from omiti2v.asm.gating import TimestepTracker
from omiti2v.asm.hooks import transformers_of
from omiti2v.asm.processors import (
    AttentionCall,
    InterceptionHandle,
    find_attention_sites,
    intercept_attention,
)

Key = tuple[str, int, float]


class AttentionProbe:
    """Base of the probes: `__enter__` fills `_installed` with (timestep tracker, interception) pairs that
    `__exit__` removes, leaving the model's processors and hooks as they were."""

    _installed: list[tuple[Any, InterceptionHandle]]

    def __exit__(self, *exc: object) -> None:
        for tracker, interception in self._installed:
            interception.remove()
            tracker.remove()
        self._installed = []


class EntropyProbe(AttentionProbe):
    """Context manager collecting attention entropy; see the module docstring."""

    def __init__(self, pipe_or_transformer: Any, sites: Iterable[str] | None = None,
                 blocks: Iterable[int] | None = None, max_queries: int | None = 256):
        self._targets = transformers_of(pipe_or_transformer)
        self.sites = None if sites is None else set(sites)
        self.blocks = None if blocks is None else set(blocks)
        self.max_queries = max_queries
        self._sums: dict[Key, list[Any]] = {}
        self._installed: list[tuple[TimestepTracker, InterceptionHandle]] = []

    def __enter__(self) -> EntropyProbe:
        for transformer in self._targets:
            chosen = [s for s in find_attention_sites(transformer)
                      if (self.sites is None or set(s.sites) & self.sites)
                      and (self.blocks is None or s.block in self.blocks)]
            tracker = TimestepTracker(transformer)
            self._installed.append((tracker, intercept_attention(chosen, self._observer(tracker))))
        return self

    def _observer(self, tracker: TimestepTracker):
        def observe(call: AttentionCall) -> None:
            if self.sites is not None and call.site not in self.sites:
                return
            with torch.no_grad():
                entropy, log_count = attention_entropy(call.query, call.key, call.scale, call.attn_mask,
                                                       call.layout, max_queries=self.max_queries)
                normalized = normalized_entropy(entropy, log_count)
            key = (call.site, call.block, tracker.current)
            acc = self._sums.setdefault(key, [0.0, 0.0, 0])
            acc[0] = acc[0] + entropy.mean()
            acc[1] = acc[1] + normalized.mean()
            acc[2] += 1
        return observe

    def entropy(self, normalized: bool = False) -> dict[Key, float]:
        """Mean entropy (nats, or H / log N with `normalized`) per (site, block, timestep)."""
        column = 1 if normalized else 0
        return {key: float(acc[column]) / acc[2] for key, acc in self._sums.items()}

    def records(self) -> list[dict[str, Any]]:
        rows = []
        for (site, block, timestep), (h_sum, n_sum, calls) in sorted(self._sums.items(),
                                                                     key=lambda kv: (kv[0][0], kv[0][1], -kv[0][2])):
            rows.append({"site": site, "block": block, "timestep": timestep, "entropy": float(h_sum) / calls,
                         "normalized_entropy": float(n_sum) / calls, "calls": calls})
        return rows

    def per_block(self, normalized: bool = False) -> dict[tuple[str, int], float]:
        """Mean over timesteps of the per-step entropy, per (site, block)."""
        grouped: dict[tuple[str, int], list[float]] = {}
        for (site, block, _), value in self.entropy(normalized).items():
            grouped.setdefault((site, block), []).append(value)
        return {key: sum(values) / len(values) for key, values in grouped.items()}

    def reset(self) -> None:
        self._sums.clear()
