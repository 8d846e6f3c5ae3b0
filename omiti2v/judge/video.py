"""The judge's view of a video: frames sampled and resized the way qwen-vl-utils does it, decoded once.

qwen-vl-utils' `fetch_video` samples `fps` frames per second (an even count, linspace indices) and resizes
every frame (bicubic, antialiased) to a multiple of 28 within [min_pixels, max_pixels]. We reuse its sizing
functions but decode with `omiti2v.video.read_video`, so a broken file raises one `VideoDecodeError` instead of
a silent fallback, and the frames of a sample are read exactly once however many questions it has.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..video import read_video

PAPER_FPS = 8.0
PAPER_MAX_PIXELS = 360 * 420


@dataclass(frozen=True)
class VideoSpec:
    """How the judge samples a video (REFERENCE §4: fps 8, max_pixels 360*420)."""

    fps: float = PAPER_FPS
    max_pixels: int = PAPER_MAX_PIXELS
    min_pixels: int | None = None  # None: qwen-vl-utils' default, lowered to max_pixels when above it

    def pixel_range(self) -> tuple[int, int]:
        from qwen_vl_utils import vision_process

        default_min = vision_process.VIDEO_MIN_TOKEN_NUM * (14 * vision_process.SPATIAL_MERGE_SIZE) ** 2
        low = default_min if self.min_pixels is None else self.min_pixels
        return min(low, self.max_pixels), self.max_pixels


@dataclass
class JudgeVideo:
    """Sampled, resized float frames (T, C, H, W) and the metadata transformers needs for temporal positions."""

    frames: torch.Tensor
    metadata: dict


def load_judge_video(path: str | Path, spec: VideoSpec) -> JudgeVideo:
    """Decode `path` once and sample/resize it as qwen-vl-utils would; raises VideoDecodeError on a bad file."""
    from qwen_vl_utils.vision_process import smart_nframes, smart_resize
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms.functional import resize

    frames, info = read_video(path)
    total = len(frames)
    nframes = smart_nframes({"fps": spec.fps}, total_frames=total, video_fps=info.fps)
    indices = torch.linspace(0, total - 1, nframes).round().long().tolist()
    video = torch.from_numpy(frames[indices]).permute(0, 3, 1, 2)
    min_pixels, max_pixels = spec.pixel_range()
    height, width = smart_resize(video.shape[2], video.shape[3], factor=28, min_pixels=min_pixels, max_pixels=max_pixels)
    video = resize(video, [height, width], interpolation=InterpolationMode.BICUBIC, antialias=True).float()
    return JudgeVideo(video, {"fps": info.fps, "frames_indices": indices, "total_num_frames": total})
