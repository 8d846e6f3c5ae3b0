"""`ForegroundProbe`: foreground ratio of the attention per (sample, site, block, timestep).

    probe = ForegroundProbe(pipe)            # site: where the family's ASM acts on the image tokens
    probe.set_sample("sample_0", mask)       # boolean (H, W) foreground of the input image as the model sees it
    pipe(...)
    probe.records()                          # rows: sample_id, site, block, timestep, foreground_lift, ...

Score (the "foreground ratio" of a block): for the generated video queries, the share of the attention mass
on the input-image tokens that lands on foreground tokens, divided by the foreground's share of the image
area (`omiti2v.calibrate.stats.foreground_lift`). 1 means the block attends to the image regardless of its
content; above 1, it concentrates on the foreground. Strided query sample, chunked softmax over all keys:
never an N x N matrix. Values stay on the device until read.

`track_queries` also records, for a few chosen query tokens, their attention over the image tokens (a map to
overlay on the input image); tokens are given as (frame, y, x) fractions of the generated video in [0, 1].
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch

from omiti2v.asm.config import resolve_window
from omiti2v.asm.hooks import transformers_of
from omiti2v.asm.probe import AttentionProbe
from omiti2v.asm.processors import (
    AttentionCall,
    InterceptionHandle,
    find_attention_sites,
    intercept_attention,
)
from omiti2v.calibrate.layout import GeometryTracker, Region, default_site, region_for
from omiti2v.calibrate.saliency import grid_coverage
from omiti2v.calibrate.stats import attention_rows, foreground_lift, foreground_share, select_queries

Key = tuple[str, str, int, float]  # sample, site, block, timestep


def token_index(region: Region, point: Sequence[float]) -> int:
    """Index of the query token at (frame, y, x) fractions of the region's generated video."""
    rows, cols = region.video_grid
    frames = (region.queries[1] - region.queries[0]) // (rows * cols)
    f, y, x = (min(max(float(v), 0.0), 1.0) for v in point)
    fi, yi, xi = round(f * (frames - 1)), round(y * (rows - 1)), round(x * (cols - 1))
    return region.queries[0] + (fi * rows + yi) * cols + xi


class ForegroundProbe(AttentionProbe):
    """Context manager measuring the foreground ratio; see the module docstring."""

    def __init__(self, pipe_or_transformer: Any, site: str | None = None, blocks: Iterable[int] | None = None,
                 max_queries: int | None = 1024, window: str | tuple[float, float] = "all",
                 track_queries: Sequence[Sequence[float]] = (), chunk_elements: int = 1 << 24):
        self._targets = transformers_of(pipe_or_transformer)
        self.site = site
        self.blocks = None if blocks is None else set(blocks)
        self.max_queries = max_queries
        self.window = resolve_window(window)
        self.track_queries = [tuple(p) for p in track_queries]
        self.chunk_elements = chunk_elements
        self.sample_id = ""
        self._mask: np.ndarray | None = None
        self._coverage: dict[tuple, tuple[torch.Tensor, float]] = {}
        self._sums: dict[Key, list[Any]] = {}
        self._maps: dict[Key, list[Any]] = {}
        self._installed: list[tuple[GeometryTracker, InterceptionHandle]] = []

    def set_sample(self, sample_id: str, mask: np.ndarray) -> None:
        """Score the next calls as `sample_id` with foreground `mask` (bool (H, W) of the image the model sees)."""
        mask = np.asarray(mask, dtype=bool)
        if mask.ndim != 2 or not mask.any():
            raise ValueError(f"foreground mask of {sample_id!r} must be a non-empty 2-D boolean array")
        self.sample_id, self._mask, self._coverage = sample_id, mask, {}

    def __enter__(self) -> ForegroundProbe:
        for transformer in self._targets:
            tracker = GeometryTracker(transformer)
            sites = find_attention_sites(transformer)
            site = self.site or default_site(tracker.family, any("cross_image" in s.sites for s in sites))
            chosen = [s for s in sites if site in s.sites and (self.blocks is None or s.block in self.blocks)]
            if not chosen:
                tracker.remove()
                raise ValueError(f"{type(transformer).__name__} has no {site!r} attention"
                                 + ("" if self.blocks is None else f" in blocks {sorted(self.blocks)}"))
            self.site = site
            self._installed.append((tracker, intercept_attention(chosen, self._observer(tracker, site))))
        return self

    def _foreground(self, region: Region, device: torch.device) -> tuple[torch.Tensor, float]:
        """Coverage weights of the region's image tokens (on `device`) and the foreground area share."""
        key = (region.key_grid, region.square_crop, device)
        if key not in self._coverage:
            coverage = grid_coverage(self._mask, region.key_grid, region.square_crop)
            area = float(coverage.mean())
            if area in (0.0, 1.0):
                raise ValueError(f"sample {self.sample_id!r}: the foreground covers {'none' if area == 0 else 'all'}"
                                 f" of the {region.key_grid} image-token grid; the ratio is undefined")
            self._coverage[key] = (coverage.to(device), area)
        return self._coverage[key]

    def _observer(self, tracker: GeometryTracker, site: str):
        def observe(call: AttentionCall) -> None:
            t = tracker.current
            if call.site != site or t is None or not self.window[0] < t <= self.window[1]:
                return
            if self._mask is None:
                raise RuntimeError("ForegroundProbe: call set_sample(sample_id, mask) before running the model")
            seq = 1 if call.layout == "BSHD" else 2
            region = region_for(tracker.family, site, tracker.geometry, call.query.shape[seq], call.key.shape[seq])
            with torch.no_grad():
                self._score(call, region, (self.sample_id, site, call.block, t))
        return observe

    def _score(self, call: AttentionCall, region: Region, key: Key) -> None:
        device = call.query.device
        fg, area = self._foreground(region, device)
        seq = 1 if call.layout == "BSHD" else 2
        index = select_queries(call.query.shape[seq], region.queries, self.max_queries, device)
        fg_mass, image_mass = foreground_share(call.query, call.key, call.scale, region.keys, fg, index,
                                               call.attn_mask, call.layout, self.chunk_elements)
        lift = foreground_lift(fg_mass, image_mass, fg)
        valid = ~torch.isnan(lift)
        acc = self._sums.setdefault(key, [0.0, 0.0, 0.0, 0.0, 0, area])
        acc[0] = acc[0] + lift.nan_to_num(0.0).sum()
        acc[1] = acc[1] + valid.sum()
        acc[2] = acc[2] + (fg_mass / image_mass.clamp_min(1e-30)).masked_fill(~valid, 0.0).sum()
        acc[3] = acc[3] + image_mass.mean()
        acc[4] += 1
        if self.track_queries:
            points = torch.tensor([token_index(region, p) for p in self.track_queries], device=device)
            rows = torch.cat([p for _, p in attention_rows(call.query, call.key, call.scale, points, call.attn_mask,
                                                             call.layout, self.chunk_elements)], dim=2)
            maps = rows[..., region.keys[0]:region.keys[1]].mean(dim=(0, 1))  # (tokens, image tokens)
            entry = self._maps.setdefault(key, [0.0, 0, region.key_grid, region.square_crop])
            entry[0] = entry[0] + maps
            entry[1] += 1

    def records(self) -> list[dict[str, Any]]:
        """One row per (sample, site, block, timestep), in sample, block, decreasing-timestep order."""
        rows = []
        for (sample, site, block, t), (lift, n, share, image, calls, area) in sorted(
                self._sums.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2], -kv[0][3])):
            n = float(n)
            rows.append({"sample_id": sample, "site": site, "block": block, "timestep": t,
                         "foreground_lift": float(lift) / n if n else float("nan"),
                         "foreground_share": float(share) / n if n else float("nan"),
                         "image_mass": float(image) / calls, "foreground_area": area, "calls": calls})
        return rows

    def attention_maps(self) -> dict[Key, dict[str, Any]]:
        """Per (sample, site, block, timestep): {"maps": float array (tokens, rows, cols), "square_crop": bool}."""
        out = {}
        for key, (total, calls, grid, square) in self._maps.items():
            maps = (total / calls).float().cpu().numpy().reshape(len(self.track_queries), *grid)
            out[key] = {"maps": maps, "square_crop": square}
        return out

    def reset(self) -> None:
        self._sums.clear()
        self._maps.clear()
