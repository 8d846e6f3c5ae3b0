"""Copy index: how much the LAST frame still looks like the input image (1 = a video that never left it).

Semantic negligence is a video that keeps the input image instead of making the edit, so the end of the video is
what matters: a model that copies its input ends where it started. The index is the structural similarity (SSIM,
Wang et al. 2004, IEEE TIP 13(4)) between the input image, as the model received it (input_image.model_view), and
the video's last frame, at a coarse scale: both are resized alike (antialiased bilinear) so that the short side
is 32 pixels, then SSIM with an 11 x 11 Gaussian window (sigma 1.5), K1 0.01, K2 0.03, L 255, averaged over the
window positions inside the image and over the R, G and B channels. No weights: it runs the same everywhere.

Why coarse and in colour: at 32 pixels one pixel spans about 15 of a 480p video, so the small camera drift and
codec noise of a video that otherwise stays put barely move the index, while an object that appears or vanishes,
or a colour change over part of the picture, still does (flowers grown in a grey car interior change colour more
than luminance). At full resolution in luminance, the paper authors' FramePack examples rank the other way: the
original videos drift slightly as a whole and score lower than the AlignVid videos whose edit is local.

The index says "the video ends as it began", not "the edit was made". For a deletion or addition prompt a high
index is a failure (the object is still there, or never came); the tables report it per main category beside
the judge's accuracy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..video import VideoInfo
from .base import Clip, Score, Scorer
from .input_image import model_view

WORKING_SHORT_SIDE = 32
WINDOW, SIGMA = 11, 1.5
K1, K2, DATA_RANGE = 0.01, 0.03, 255.0


def coarse(rgb: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) -> float64 (3, 1, H', W'), one image per channel, short side 32."""
    y = torch.tensor(np.asarray(rgb), dtype=torch.float64).permute(2, 0, 1)[:, None]
    h, w = y.shape[-2:]
    scale = WORKING_SHORT_SIDE / min(h, w)
    size = [max(WINDOW, round(h * scale)), max(WINDOW, round(w * scale))]
    return F.interpolate(y, size=size, mode="bilinear", antialias=True, align_corners=False)


def gaussian_window() -> torch.Tensor:
    offsets = torch.arange(WINDOW, dtype=torch.float64) - (WINDOW - 1) / 2
    g = torch.exp(-(offsets ** 2) / (2 * SIGMA ** 2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]


def ssim(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean SSIM of two (C, 1, H, W) float images over the valid window positions and the C channels."""
    window = gaussian_window()
    mu_a, mu_b = F.conv2d(a, window), F.conv2d(b, window)
    var_a = F.conv2d(a * a, window) - mu_a ** 2
    var_b = F.conv2d(b * b, window) - mu_b ** 2
    cov = F.conv2d(a * b, window) - mu_a * mu_b
    c1, c2 = (K1 * DATA_RANGE) ** 2, (K2 * DATA_RANGE) ** 2
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return float(ssim_map.mean())


def copy_index(image: np.ndarray, last_frame: np.ndarray) -> float:
    """Coarse colour SSIM of an input image and a frame of the same size (uint8 RGB arrays)."""
    if image.shape != last_frame.shape:
        raise ValueError(f"copy_index: image {image.shape} and frame {last_frame.shape} differ in size")
    return ssim(coarse(image), coarse(last_frame))


class CopyIndexScorer(Scorer):
    metric = "copy_index"
    needs_input_image = True

    @property
    def backend(self) -> str:
        return f"ssim:rgb:short{WORKING_SHORT_SIDE}"

    @property
    def comparable(self) -> bool:
        return True  # weight-free: the same number on every machine

    def frame_indices(self, info: VideoInfo) -> Sequence[int]:
        return [info.num_frames - 1]

    def score(self, clips: Sequence[Clip]) -> list[Score]:
        out = []
        for clip in clips:
            last = clip.select([clip.info.num_frames - 1])[0]
            image = np.asarray(model_view(clip))
            out.append(Score(copy_index(image, last), {"frame": clip.info.num_frames - 1,
                                                       "size": [last.shape[1], last.shape[0]]}))
        return out
