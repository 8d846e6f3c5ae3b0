"""Dynamic degree, as VBench computes it (https://github.com/Vchitect/VBench, dynamic_degree.py): is the
video moving, yes or no.

Per video: keep every `round(fps / 8)`-th frame (N frames), compute optical flow for each consecutive pair of
kept frames on frames replicate-padded to a multiple of 8, score each pair by the mean of its top 5 % flow
magnitudes, and call the video dynamic when at least round(4 N / 16) pairs score above
6 * min(H, W) / 256 pixels (H, W before padding). Like VBench, the 5 % is taken over the padded flow field, and
the threshold is multiplied by max(1, 8 / fps) (a no-op at 8 fps and above).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..video import VideoInfo
from .base import Clip, Score, Scorer
from .flow import build_flow_backend
from .weights import WeightFile

TOP_FRACTION = 0.05


def frame_interval(fps: float) -> int:
    """VBench keeps ~8 frames per second: every round(fps / 8)-th frame (Python round: halves to even)."""
    return max(1, round(fps / 8))


def sampled_indices(num_frames: int, fps: float) -> range:
    return range(0, num_frames, frame_interval(fps))


def motion_threshold(height: int, width: int, fps: float) -> float:
    """Pixels of top-5 % flow above which a pair counts as moving: 6 px at 256 px on the short side."""
    return max(1.0, 8.0 / fps) * 6.0 * (min(height, width) / 256.0)


def required_count(num_sampled: int) -> int:
    """Moving pairs needed: a quarter of the sampled frames, Python-rounded (halves to even)."""
    return round(4 * (num_sampled / 16.0))


def is_dynamic(pair_scores: Sequence[float], threshold: float, count: int) -> bool:
    """VBench's check_move: counts are tested after each pair, so a video with no pairs is never dynamic."""
    return len(pair_scores) > 0 and sum(s > threshold for s in pair_scores) >= count


def pad_to_multiple_of_8(frames: torch.Tensor) -> torch.Tensor:
    """RAFT's InputPadder ('sintel' mode, VBench's default): replicate-pad, split evenly, extra pixel at the end."""
    h, w = frames.shape[-2:]
    pad_h, pad_w = (-h) % 8, (-w) % 8
    if pad_h == pad_w == 0:
        return frames
    return F.pad(frames, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2], mode="replicate")


def top_fraction_mean(flow: torch.Tensor, fraction: float = TOP_FRACTION) -> torch.Tensor:
    """Per pair (B, 2, H, W) -> (B,): mean of the largest int(H * W * fraction) magnitudes sqrt(u^2 + v^2)."""
    u, v = flow[:, 0].float(), flow[:, 1].float()
    magnitude = torch.sqrt(u * u + v * v).flatten(1)
    cut = max(1, int(magnitude.shape[1] * fraction))  # VBench's int(h*w*0.05); >= 1 only matters below 20 px
    return magnitude.topk(cut, dim=1, sorted=False).values.mean(dim=1)


class DynamicDegreeScorer(Scorer):
    """Flow pairs from all clips of a call are batched together (`pair_batch_size`) on the scorer's device."""

    def __init__(self, cfg, device):
        super().__init__(cfg, device)
        self.options = cfg.get("dynamic_degree") or {}
        self.flow_backend = build_flow_backend(cfg.get("flow_backend", "raft"), self.options, device)

    @property
    def backend(self) -> str:
        fb = self.flow_backend
        if fb.name == "raft":
            return f"raft_large:{self.options.get('raft_weights', 'C_T_V1')}:{self.options.get('dtype', 'float32')}"
        return fb.name

    @property
    def comparable(self) -> bool:
        return self.flow_backend.comparable

    def required_weights(self) -> list[WeightFile]:
        return self.flow_backend.required_weights()

    def load(self, weights: dict[str, str] | None = None) -> None:
        self.flow_backend.load(weights or {})

    def frame_indices(self, info: VideoInfo) -> Sequence[int]:
        return sampled_indices(info.num_frames, info.fps)

    def score(self, clips: Sequence[Clip]) -> list[Score]:
        frames, details = [], []
        for clip in clips:
            indices = list(self.frame_indices(clip.info))
            x = torch.from_numpy(clip.select(indices)).to(self.device).permute(0, 3, 1, 2).float()
            h, w = x.shape[-2:]
            x = pad_to_multiple_of_8(x)
            frames.append(x)
            details.append({
                "fps": clip.info.fps,
                "frame_interval": frame_interval(clip.info.fps),
                "sampled_frames": len(indices),
                "size": [w, h],
                "padded_size": [x.shape[-1], x.shape[-2]],
                "threshold": motion_threshold(h, w, clip.info.fps),
                "required_count": required_count(len(indices)),
            })
        pair_scores = self.pair_scores(frames)
        out = []
        for scores, d in zip(pair_scores, details, strict=True):
            d["pair_scores"] = scores
            d["pairs_above"] = sum(s > d["threshold"] for s in scores)
            out.append(Score(float(is_dynamic(scores, d["threshold"], d["required_count"])), d))
        return out

    def pair_scores(self, frames: Sequence[torch.Tensor]) -> list[list[float]]:
        """Top-5 % flow magnitude of every consecutive pair, batching pairs across clips of the same size."""
        scores: list[list[float | None]] = [[None] * max(0, len(x) - 1) for x in frames]
        by_shape: dict[tuple[int, int], list[tuple[int, int]]] = {}
        for ci, x in enumerate(frames):
            by_shape.setdefault(tuple(x.shape[-2:]), []).extend((ci, j) for j in range(len(x) - 1))
        batch = self.flow_backend.batch_size
        for pairs in by_shape.values():
            for start in range(0, len(pairs), batch):
                chunk = pairs[start:start + batch]
                image1 = torch.stack([frames[ci][j] for ci, j in chunk])
                image2 = torch.stack([frames[ci][j + 1] for ci, j in chunk])
                values = top_fraction_mean(self.flow_backend.flow(image1, image2)).tolist()
                for (ci, j), value in zip(chunk, values, strict=True):
                    scores[ci][j] = value
        return scores
