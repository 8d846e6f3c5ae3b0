"""The judge's view of a video: frames sampled and resized the way qwen-vl-utils does it, decoded once.

qwen-vl-utils' `fetch_video` samples `fps` frames per second (an even count, linspace indices) and resizes
every frame (bicubic, antialiased) to a multiple of 28 within [min_pixels, max_pixels]. We reuse its sizing
functions but decode with `omiti2v.video.read_video`, so a broken file raises one `VideoDecodeError` instead of
a silent fallback, the frames of a sample are read exactly once however many questions it has, and only the
sampled frames are decoded (decord's get_batch). `plan_judge_video` sizes a video from its header alone, so
batches can be planned before anything is decoded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..paper_settings import paper_judge
from ..video import probe_video, read_video

_PAPER = paper_judge()  # the frames the official qwen.py samples (conf/judge/qwen2.5-vl-32b.yaml)
PAPER_FPS = float(_PAPER["fps"])
PAPER_MAX_PIXELS = int(_PAPER["max_pixels"])
PAPER_METADATA_FPS = float(_PAPER["metadata_fps"])  # what transformers 4.50 (the released code's pin) assumed
PAPER_MAX_NEW_TOKENS = int(_PAPER["max_new_tokens"])  # greedy replies of at most this many tokens
MERGED_PATCH = 28  # one LLM video token covers 28x28 pixels of 2 frames (patch 14, spatial merge 2, temporal 2)


@dataclass(frozen=True)
class VideoSpec:
    """How the judge samples a video (qwen.py: fps 8, max_pixels 360*420; the processor told fps 2.0)."""

    fps: float = PAPER_FPS
    max_pixels: int = PAPER_MAX_PIXELS
    min_pixels: int | None = None  # None: qwen-vl-utils' default, lowered to max_pixels when above it
    metadata_fps: float | None = PAPER_METADATA_FPS  # the sampled fps the processor is told; None: the true one
    merged_patch: int = MERGED_PATCH  # pixels per LLM video token side: Qwen2.5-VL 28, Qwen3-VL 32 (patch 16)
    temporal_patch: int = 2  # frames per LLM video token: Qwen 2, InternVL 1
    frame_size: tuple[int, int] | None = None  # (height, width) every frame is resized to; None: within max_pixels

    def pixel_range(self) -> tuple[int, int]:
        from qwen_vl_utils import vision_process

        default_min = vision_process.VIDEO_MIN_TOKEN_NUM * (14 * vision_process.SPATIAL_MERGE_SIZE) ** 2
        low = default_min if self.min_pixels is None else self.min_pixels
        return min(low, self.max_pixels), self.max_pixels


@dataclass(frozen=True)
class VideoPlan:
    """What the judge will read from one file: source fps and frame count, sampled indices, resized size."""

    source_fps: float
    total_frames: int
    indices: tuple[int, ...]
    height: int
    width: int
    merged_patch: int = MERGED_PATCH
    temporal_patch: int = 2

    @property
    def video_tokens(self) -> int:
        """LLM tokens of the video after the processor's spatial and temporal merge."""
        frames = len(self.indices) // self.temporal_patch
        return frames * (self.height // self.merged_patch) * (self.width // self.merged_patch)


@dataclass
class JudgeVideo:
    """Sampled, resized float frames (T, C, H, W) and the metadata transformers needs for temporal positions."""

    frames: torch.Tensor
    metadata: dict


def plan_judge_video(path: str | Path, spec: VideoSpec) -> VideoPlan:
    """Sampling and size from the header only; raises VideoDecodeError on a missing or unreadable file."""
    from qwen_vl_utils.vision_process import smart_nframes, smart_resize

    info = probe_video(path)
    nframes = smart_nframes({"fps": spec.fps}, total_frames=info.num_frames, video_fps=info.fps)
    indices = torch.linspace(0, info.num_frames - 1, nframes).round().long().tolist()
    if spec.frame_size:
        height, width = spec.frame_size
    else:
        min_pixels, max_pixels = spec.pixel_range()
        height, width = smart_resize(info.height, info.width, factor=spec.merged_patch, min_pixels=min_pixels,
                                     max_pixels=max_pixels)
    return VideoPlan(info.fps, info.num_frames, tuple(indices), height, width, spec.merged_patch, spec.temporal_patch)


def load_judge_video(path: str | Path, spec: VideoSpec, plan: VideoPlan | None = None) -> JudgeVideo:
    """Decode the sampled frames of `path` and resize them as qwen-vl-utils would; VideoDecodeError on a bad file.

    The metadata tells the processor the sampled clip's fps: `spec.metadata_fps` (the paper's 2.0, giving
    second_per_grid_ts 1.0) or, when None, the true rate (source fps x sampled / total frames)."""
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms.functional import resize

    plan = plan or plan_judge_video(path, spec)
    frames, _ = read_video(path, plan.indices)
    video = torch.from_numpy(frames).permute(0, 3, 1, 2)
    video = resize(video, [plan.height, plan.width], interpolation=InterpolationMode.BICUBIC, antialias=True).float()
    if spec.metadata_fps is None:
        metadata = {"fps": plan.source_fps, "frames_indices": list(plan.indices), "total_num_frames": plan.total_frames}
    else:
        n = len(plan.indices)
        metadata = {"fps": spec.metadata_fps, "frames_indices": list(range(n)), "total_num_frames": n}
    return JudgeVideo(video, metadata)
