"""Foreground share of attention, computed without the N x N attention matrix.

For a query q with logits z_j = s * q.k_j over every key and p = softmax(z), the image tokens I (a contiguous
key range holding the input image) receive the mass m_I(q) = sum_{j in I} p_j, and the foreground part of them
m_F(q) = sum_{j in I} w_j p_j, where w_j in [0, 1] is the foreground coverage of token j. The softmax runs over
*all* keys (the true attention), in chunks of queries so that at most `chunk_elements` logits exist at once,
for a strided subsample of queries (`max_queries`), the same sampling rule as `omiti2v.asm.entropy`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch

from omiti2v.asm.entropy import query_sample


def _bhsd(x: torch.Tensor, layout: str) -> torch.Tensor:
    return x.transpose(1, 2) if layout == "BSHD" else x


def _broadcast_mask(attn_mask: torch.Tensor | None) -> torch.Tensor | None:
    if attn_mask is None:
        return None
    while attn_mask.dim() < 4:
        attn_mask = attn_mask.unsqueeze(0)
    return attn_mask


def _masked_logits(logits: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if mask is None:
        return logits
    if mask.dtype == torch.bool:
        return logits.masked_fill(~mask, -math.inf)
    return logits + mask.float()


def select_queries(num_queries: int, query_range: tuple[int, int], max_queries: int | None,
                   device: torch.device) -> torch.Tensor:
    """Evenly strided query indices within [start, stop) (all of them when max_queries is None or larger)."""
    start, stop = query_range
    if not 0 <= start < stop <= num_queries:
        raise ValueError(f"query range {query_range} does not fit {num_queries} queries")
    local = query_sample(stop - start, max_queries, device)
    return torch.arange(start, stop, device=device) if local is None else local + start


def attention_rows(query: torch.Tensor, key: torch.Tensor, scale: float, query_index: torch.Tensor,
                   attn_mask: torch.Tensor | None = None, layout: str = "BSHD",
                   chunk_elements: int = 1 << 24) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield (first row, float32 probabilities (B, H, rows, Nk)) for the queries `query_index`, chunk by chunk."""
    q = _bhsd(query, layout).index_select(2, query_index)
    k = _bhsd(key, layout)
    if k.shape[1] != q.shape[1]:  # grouped-query attention
        k = k.repeat_interleave(q.shape[1] // k.shape[1], dim=1)
    k = k.contiguous()
    mask = _broadcast_mask(attn_mask)
    if mask is not None and mask.shape[-2] > 1:
        mask = mask.index_select(-2, query_index)
    b, h, nq, _ = q.shape
    rows = max(1, chunk_elements // max(1, b * h * k.shape[2]))
    for start in range(0, nq, rows):
        logits = torch.matmul(q[:, :, start:start + rows], k.transpose(-1, -2)).float() * scale
        if mask is not None:
            logits = _masked_logits(logits, mask[..., start:start + rows, :] if mask.shape[-2] > 1 else mask)
        yield start, torch.softmax(logits, dim=-1).nan_to_num(0.0)  # fully masked rows -> zeros


def foreground_share(query: torch.Tensor, key: torch.Tensor, scale: float, key_range: tuple[int, int],
                     foreground: torch.Tensor, query_index: torch.Tensor, attn_mask: torch.Tensor | None = None,
                     layout: str = "BSHD", chunk_elements: int = 1 << 24) -> tuple[torch.Tensor, torch.Tensor]:
    """(m_F, m_I), each (B, H, Q') float32: foreground and image-token attention mass of the chosen queries.

    `key_range` = [start, stop) of the image tokens among the keys; `foreground` = their coverage weights (stop -
    start,) in [0, 1]. `query`/`key` layout as in `omiti2v.asm.entropy.attention_entropy`.
    """
    start, stop = key_range
    if foreground.numel() != stop - start:
        raise ValueError(f"foreground has {foreground.numel()} weights for the {stop - start} image tokens")
    weights = foreground.to(device=query.device, dtype=torch.float32).reshape(-1, 1)
    fg, image = [], []
    for _, probs in attention_rows(query, key, scale, query_index, attn_mask, layout, chunk_elements):
        region = probs[..., start:stop]
        fg.append(torch.matmul(region, weights).squeeze(-1))
        image.append(region.sum(-1))
    return torch.cat(fg, dim=2), torch.cat(image, dim=2)


def foreground_lift(fg_mass: torch.Tensor, image_mass: torch.Tensor, foreground: torch.Tensor) -> torch.Tensor:
    """Per query: (m_F / m_I) / (foreground area share). 1 = attention blind to the foreground, > 1 = drawn to it.

    Queries with no mass on the image tokens are left out (NaN) rather than counted as blind."""
    area = foreground.float().mean().clamp_min(1e-12).to(fg_mass.device)
    share = torch.where(image_mass > 0, fg_mass / image_mass.clamp_min(1e-30), torch.full_like(fg_mass, math.nan))
    return share / area
