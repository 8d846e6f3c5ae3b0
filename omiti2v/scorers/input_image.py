"""The input image beside the video, and VBench-I2V's rule for how close a video stays to it.

The metrics that measure input preservation compare frames with the image the model was given. The benchmark's
image file has its own size and aspect; the generator centre-crops or resizes it to the video's aspect. So the
image is compared as the model received it (`model_view`): centre-cropped to the native video's aspect ratio,
then resized (bicubic) to the frame size the metrics see (after the paper resize, when the profile applies it),
so the image and the frames are stretched alike.

VBench-I2V's image-to-video consistency (`vbench_i2v_score`, the rule of I2V subject and I2V background in
VBench's vbench2_beta_i2v, read there): each frame's feature vector and the input image's are L2-normalised;
with cos clipped below at 0, the video scores
0.4 * max_t cos(image, frame_t) + 0.3 * mean_t cos(frame_t-1, frame_t) + 0.3 * min_t cos(frame_t-1, frame_t)
over every frame of the video. The first term is a maximum over frames: frame 0 of an I2V video is (nearly) the
input image, so it is close to 1 for every model; the score mostly measures how smoothly the video departs from
its start. The copy index (copy_index.py) looks at the last frame instead.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .base import Clip

WEIGHT_MAX, WEIGHT_MEAN, WEIGHT_MIN = 0.4, 0.3, 0.3


def load_input_image(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


def centre_crop_to_aspect(image: Image.Image, width: int, height: int) -> Image.Image:
    """The largest centred region of `image` with aspect width:height."""
    w, h = image.size
    if w * height > h * width:  # wider than the target: trim the sides
        new_w = max(1, round(h * width / height))
        left = (w - new_w) // 2
        return image.crop((left, 0, left + new_w, h))
    new_h = max(1, round(w * height / width))
    top = (h - new_h) // 2
    return image.crop((0, top, w, top + new_h))


def model_view(clip: Clip) -> Image.Image:
    """The clip's input image as the model received it, at the size of the frames the metrics see."""
    if clip.image is None:
        raise ValueError(f"{clip.sample_id}: no input image to compare with (Clip.image)")
    native = (clip.details.get("resize") or {}).get("from") or [clip.info.width, clip.info.height]
    height, width = clip.frames.shape[1:3]
    cropped = centre_crop_to_aspect(Image.fromarray(clip.image), *native)
    return cropped.resize((width, height), Image.Resampling.BICUBIC)


def vbench_i2v_score(image_features: torch.Tensor, frame_features: torch.Tensor) -> tuple[float, dict]:
    """VBench-I2V's consistency of (D,) image features with (T, D) frame features, T >= 2 (rule above)."""
    if len(frame_features) < 2:
        raise ValueError(f"VBench-I2V consistency needs at least 2 frames, got {len(frame_features)}")
    image = F.normalize(image_features.double(), dim=-1)
    frames = F.normalize(frame_features.double(), dim=-1)
    to_input = (frames @ image).clamp(min=0)
    consecutive = (frames[1:] * frames[:-1]).sum(dim=-1).clamp(min=0)
    score = (WEIGHT_MAX * to_input.max() + WEIGHT_MEAN * consecutive.mean() + WEIGHT_MIN * consecutive.min()).item()
    return float(score), {"frames": len(frames), "to_input": to_input.tolist(), "consecutive_min": consecutive.min().item(),
                          "consecutive_mean": consecutive.mean().item(), "last_to_input": to_input[-1].item()}
