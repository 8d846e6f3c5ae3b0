"""Imaging quality, as VBench computes it: pyiqa's MUSIQ trained on SPAQ, per frame, / 100, mean over frames.

VBench's default 'longer' preprocessing: frames / 255; when the longer side exceeds 512 the frame is resized
(bilinear, no antialias) to (int(s * H), int(s * W)) with s = 512 / max(H, W).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torchvision.transforms import functional as TF

from .base import Clip, Score, Scorer
from .weights import WeightFile

LONGER_SIDE = 512
MUSIQ_SPAQ = WeightFile(
    label="MUSIQ trained on SPAQ (pyiqa musiq-spaq)",
    filename="musiq_spaq_ckpt-358bb6af.pth",
    url="https://huggingface.co/chaofengc/IQA-PyTorch-Weights/resolve/main/musiq_spaq_ckpt-358bb6af.pth",
    also_in=(f"{torch.hub.get_dir()}/pyiqa",),  # where pyiqa itself caches it
)


def musiq_preprocess(frames: torch.Tensor) -> torch.Tensor:
    """uint8 (T, H, W, 3) -> float (T, 3, H', W') in 0..1, longer side at most 512 (VBench 'longer' mode)."""
    x = frames.permute(0, 3, 1, 2).float()
    h, w = x.shape[-2:]
    if max(h, w) > LONGER_SIDE:
        scale = LONGER_SIDE / max(h, w)
        x = TF.resize(x, [int(scale * h), int(scale * w)], antialias=False)
    return x / 255.0


class ImagingQualityScorer(Scorer):
    """`musiq: spaq` (real weights) or `random` (untrained MUSIQ, for tests only)."""

    def __init__(self, cfg, device):
        super().__init__(cfg, device)
        self.options = cfg.get("imaging_quality") or {}
        self.weights_choice = str(self.options.get("musiq", "spaq"))
        if self.weights_choice not in ("spaq", "random"):
            raise ValueError(f"scorer.imaging_quality.musiq: expected 'spaq' or 'random', got {self.weights_choice!r}")
        self.batch_size = int(self.options.get("batch_size", 8))

    @property
    def backend(self) -> str:
        return f"pyiqa:musiq-{self.weights_choice}"

    @property
    def comparable(self) -> bool:
        return self.weights_choice == "spaq"

    def required_weights(self) -> list[WeightFile]:
        return [MUSIQ_SPAQ] if self.weights_choice == "spaq" else []

    def load(self, weights: dict[str, str] | None = None) -> None:
        import pyiqa

        if self.weights_choice == "spaq":
            opts = {"pretrained_model_path": (weights or {})[MUSIQ_SPAQ.label]}
        else:
            opts = {"pretrained": False}
        self.musiq = pyiqa.create_metric("musiq-spaq", device=self.device, **opts)
        self.musiq.eval()

    @torch.inference_mode()
    def score(self, clips: Sequence[Clip]) -> list[Score]:
        out = []
        for clip in clips:
            frames = musiq_preprocess(torch.from_numpy(clip.select(self.frame_indices(clip.info))).to(self.device))
            values = torch.cat([self.musiq(frames[i:i + self.batch_size]).flatten().float()
                                for i in range(0, len(frames), self.batch_size)]) / 100.0
            out.append(Score(float(values.double().mean()), {"frames": len(values), "frame_scores": values.tolist()}))
        return out
