"""Figures of the calibration and the attention analysis (matplotlib, Agg backend, written atomically)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from omiti2v.runs import atomic_output  # noqa: E402


def _save(fig: plt.Figure, path: str | Path) -> Path:
    path = Path(path)
    try:
        with atomic_output(path) as tmp:
            fig.savefig(tmp, dpi=120, bbox_inches="tight")
    finally:
        plt.close(fig)
    return path


def block_step_heatmap(matrix: np.ndarray, blocks: Sequence[int], columns: Sequence[float | str], path: str | Path,
                       selected: Sequence[int] = (), title: str = "", label: str = "",
                       xlabel: str = "timestep") -> Path:
    """Blocks (rows) x denoising steps (columns, labelled by timestep or text); selected blocks marked '*'."""
    fig, ax = plt.subplots(figsize=(1.6 + 0.5 * max(len(columns), 2), 1.2 + 0.22 * len(blocks)))
    image = ax.imshow(np.asarray(matrix, dtype=float), aspect="auto", cmap="viridis", interpolation="nearest")
    ax.set_xticks(range(len(columns)), [t if isinstance(t, str) else f"{t:g}" for t in columns], rotation=90)
    chosen = set(selected)
    ax.set_yticks(range(len(blocks)), [f"{b}{' *' if b in chosen else ''}" for b in blocks])
    ax.set_xlabel(xlabel)
    ax.set_ylabel("block (* selected)" if chosen else "block")
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, label=label)
    return _save(fig, path)


def entropy_vs_gamma(curves: Mapping[str, tuple[Sequence[float], Sequence[float]]], path: str | Path,
                     ylabel: str = "normalized entropy") -> Path:
    """One line per curve name: x = gamma, y = mean entropy; names containing 'blur' are dashed."""
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, (gammas, values) in curves.items():
        ax.plot(gammas, values, marker="o", linestyle="--" if "blur" in name else "-", label=name)
    ax.set_xlabel("gamma (logit multiplier of the recipe)")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, path)


def attention_overlays(image: Image.Image, panels: Sequence[Sequence[dict]], path: str | Path) -> Path:
    """Grid of attention maps over the input image: `panels[row][col]` = {"map": (rows, cols) array,
    "square_crop": bool, "title": str, "point": (y, x) fractions of the query token or None}."""
    n_rows, n_cols = len(panels), max(len(row) for row in panels)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(3 * n_cols, 3 * image.height / image.width * n_rows + 0.4),
                             squeeze=False)
    for r, row in enumerate(panels):
        for c in range(n_cols):
            ax = axes[r][c]
            ax.axis("off")
            if c >= len(row):
                continue
            panel = row[c]
            shown = image.convert("RGB")
            if panel.get("square_crop"):
                side = min(shown.size)
                left, top = (shown.width - side) // 2, (shown.height - side) // 2
                shown = shown.crop((left, top, left + side, top + side))
            heat = np.asarray(panel["map"], dtype=np.float32)
            heat = heat / max(float(heat.max()), 1e-12)
            heat = np.asarray(Image.fromarray(heat, mode="F").resize(shown.size, Image.Resampling.BILINEAR))
            ax.imshow(shown)
            ax.imshow(heat, cmap="jet", alpha=0.45, vmin=0, vmax=1)
            if panel.get("point") is not None and not panel.get("square_crop"):
                y, x = panel["point"]
                ax.plot(x * (shown.width - 1), y * (shown.height - 1), marker="x", color="white", markersize=8)
            ax.set_title(panel.get("title", ""), fontsize=7)
    return _save(fig, path)
