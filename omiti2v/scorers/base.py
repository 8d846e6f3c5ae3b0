"""The scorer interface and its registry.

A scorer turns decoded videos into one value per video. The pipeline stage decodes each video once and hands
every scorer the same `Clip`; a scorer picks the frames it needs with `frame_indices`, so adding a metric never
adds a decode. Scorers score lists of clips (not one clip) so that models can batch across videos.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig

from ..video import VideoInfo
from .weights import WeightFile


@dataclass
class Clip:
    """One decoded video: the uint8 RGB frames (T, H, W, 3) that some metric needs, their frame numbers in the
    file (`frame_ids`, all frames when None) and the stream's info (true fps and frame count)."""

    sample_id: str
    frames: np.ndarray
    info: VideoInfo
    frame_ids: Sequence[int] | None = None
    details: dict[str, Any] = field(default_factory=dict)  # preprocessing applied for every metric (resize)
    image: np.ndarray | None = None  # the benchmark's input image, uint8 RGB (H, W, 3), for scorers that compare with it

    def select(self, indices: Sequence[int]) -> np.ndarray:
        """Frames by their number in the file."""
        if self.frame_ids is None:
            return self.frames[list(indices)]
        row = {f: r for r, f in enumerate(self.frame_ids)}
        missing = [i for i in indices if i not in row]
        if missing:
            raise KeyError(f"{self.sample_id}: frames {missing[:5]} were not decoded")
        return self.frames[[row[i] for i in indices]]


@dataclass
class Score:
    value: float
    details: dict[str, Any]


class Scorer(ABC):
    """One metric. Subclasses set `metric` (the scores.jsonl name); `backend` and `comparable` describe the
    models actually used, so a smoke or approximate backend is never mistaken for the paper's numbers."""

    metric: str
    needs_input_image: bool = False  # the stage then loads each sample's input image into Clip.image

    def __init__(self, cfg: DictConfig, device: torch.device):
        self.cfg = cfg
        self.device = device

    @property
    @abstractmethod
    def backend(self) -> str: ...

    @property
    @abstractmethod
    def comparable(self) -> bool: ...

    def required_weights(self) -> list[WeightFile]:
        """Files this scorer will load; checked for every scorer before any model loads."""
        return []

    def load(self, weights: dict[str, str] | None = None) -> None:  # noqa: B027 - optional hook
        """Build or load models (after the weights check); `weights`: label -> resolved location."""

    def frame_indices(self, info: VideoInfo) -> Sequence[int]:
        """Frames this metric reads; all of them unless overridden."""
        return range(info.num_frames)

    @abstractmethod
    def score(self, clips: Sequence[Clip]) -> list[Score]:
        """One Score per clip, in order."""


def build_scorer(metric: str, cfg: DictConfig, device: torch.device) -> Scorer:
    from .registry import SCORERS

    return SCORERS.lookup(metric)(cfg, device)

