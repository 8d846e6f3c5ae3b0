"""Foreground masks of the input image and their coverage of a model's image-token grid.

Default foreground: frequency-tuned saliency (Achanta et al., CVPR 2009): the distance, in CIELAB, between
each pixel of the slightly blurred image and the image's mean colour, thresholded adaptively at twice its mean.
Why this estimate: it needs no extra model or download, is deterministic, and marks the regions that differ
from the dominant background colour, which in OmitI2V's inputs are the objects an edit is about. Where a
better mask exists (segmentation, the subject of the edit), pass it instead (`mask_dir`, `load_mask`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageCms, ImageFilter

# Bounds on the foreground's share of the image: an adaptive threshold that keeps almost nothing (flat image)
# or almost everything (busy image) would make the ratio meaningless.
MIN_AREA, MAX_AREA = 0.05, 0.5
_WORKING_SIDE = 256  # saliency is computed on a copy of this long side; masks are resized back


def _lab(image: Image.Image) -> np.ndarray:
    transform = ImageCms.buildTransformFromOpenProfiles(ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB"),
                                                        "RGB", "LAB")
    return np.asarray(ImageCms.applyTransform(image.convert("RGB"), transform), dtype=np.float32)


def saliency_map(image: Image.Image) -> np.ndarray:
    """Frequency-tuned saliency in [0, 1], (H, W) of `image`."""
    small = image.convert("RGB")
    scale = _WORKING_SIDE / max(small.size)
    if scale < 1:
        small = small.resize((max(1, round(small.width * scale)), max(1, round(small.height * scale))),
                             Image.Resampling.BILINEAR)
    lab = _lab(small.filter(ImageFilter.GaussianBlur(1)))
    distance = np.linalg.norm(lab - lab.reshape(-1, 3).mean(0), axis=-1)
    distance = distance / max(float(distance.max()), 1e-6)
    resized = Image.fromarray(distance.astype(np.float32), mode="F").resize(image.size, Image.Resampling.BILINEAR)
    return np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)


def foreground_mask(image: Image.Image) -> np.ndarray:
    """Boolean (H, W) foreground: saliency >= 2 x its mean, with the area kept within [MIN_AREA, MAX_AREA]."""
    saliency = saliency_map(image)
    threshold = 2.0 * float(saliency.mean())
    lo, hi = np.quantile(saliency, [1.0 - MAX_AREA, 1.0 - MIN_AREA])
    return saliency >= float(np.clip(threshold, lo, hi))


def load_mask(path: str | Path, size: tuple[int, int]) -> np.ndarray:
    """A mask image (non-zero = foreground) resized to `size` = (width, height), as boolean (H, W)."""
    try:
        mask = Image.open(path).convert("L")
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read foreground mask {path}: {exc}") from exc
    array = np.asarray(mask.resize(size, Image.Resampling.NEAREST)) > 0
    if not array.any():
        raise ValueError(f"foreground mask {path} is empty (no non-zero pixel)")
    return array


def grid_coverage(mask: np.ndarray, grid: tuple[int, int], square_crop: bool = False) -> torch.Tensor:
    """Foreground coverage in [0, 1] of each token of a (rows, cols) grid laid over `mask`, flattened row-major.

    `square_crop`: the tokens see the centre square of the image (CLIP-style image processors resize the short
    side and centre-crop), so the mask is cropped the same way first.
    """
    array = torch.as_tensor(np.asarray(mask, dtype=np.float32))
    if square_crop:
        h, w = array.shape
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        array = array[top:top + side, left:left + side]
    pooled = F.adaptive_avg_pool2d(array[None, None], grid)[0, 0]
    return pooled.reshape(-1)
