"""Optical-flow backends for dynamic degree: `raft` (VBench's network and weights) and `opencv_dis` (no weights).

A backend maps batches of frame pairs, float RGB in 0..255 shaped (B, 3, H, W) with H, W multiples of 8, to
flow (B, 2, H, W) in pixels. Only `raft` with the C_T_V1 weights reproduces the paper's numbers.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import nullcontext

import numpy as np
import torch
from omegaconf import DictConfig

from ..dtypes import torch_dtype
from .weights import WeightFile

RAFT_C_T_V1 = WeightFile(
    label="RAFT-large C_T_V1 (torchvision; VBench's raft-things)",
    filename="raft_large_C_T_V1-22a6c225.pth",
    url="https://download.pytorch.org/models/raft_large_C_T_V1-22a6c225.pth",
    also_in=(f"{torch.hub.get_dir()}/checkpoints",),
)


class FlowBackend(ABC):
    name: str
    comparable: bool

    def __init__(self, cfg: DictConfig, device: torch.device):
        self.cfg = cfg
        self.device = device

    def required_weights(self) -> list[WeightFile]:
        return []

    def load(self, weights: dict[str, str]) -> None:  # noqa: B027 - optional hook, most scorers override it
        """Build the model once the weights are known to be present."""

    @property
    def batch_size(self) -> int:
        return int(self.cfg.get("pair_batch_size", 16))

    @abstractmethod
    def flow(self, image1: torch.Tensor, image2: torch.Tensor) -> torch.Tensor: ...


def build_flow_backend(name: str, cfg: DictConfig, device: torch.device) -> FlowBackend:
    from .registry import FLOW_BACKENDS

    return FLOW_BACKENDS.lookup(name)(cfg, device)


class RaftFlow(FlowBackend):
    """torchvision `raft_large`, the network of VBench's RAFT with the same "things" (C_T_V1) weights.

    Input scaling: VBench passes 0..255 frames to the original RAFT, which maps them with 2 * (x / 255) - 1
    inside its forward; torchvision's RAFT expects that mapping done by the caller (its OpticalFlow preset:
    x / 255 then normalise with mean 0.5, std 0.5, the same function). We apply 2 * (x / 255) - 1 here, so
    both networks see identical tensors. Flow is the last of `iterations` refinement updates (VBench: 20).
    `raft_weights: random` builds an untrained network (tests, throughput benchmarks): not comparable.
    """

    @property
    def comparable(self) -> bool:
        return self.cfg.get("raft_weights", "C_T_V1") == "C_T_V1" and self.dtype == torch.float32

    @property
    def dtype(self) -> torch.dtype:
        return torch_dtype(self.cfg.get("dtype", "float32"))

    def required_weights(self) -> list[WeightFile]:
        return [RAFT_C_T_V1] if self.cfg.get("raft_weights", "C_T_V1") == "C_T_V1" else []

    def load(self, weights: dict[str, str]) -> None:
        from torchvision.models.optical_flow import raft_large

        choice = self.cfg.get("raft_weights", "C_T_V1")
        if choice not in ("C_T_V1", "random"):
            raise ValueError(f"scorer.dynamic_degree.raft_weights: expected 'C_T_V1' or 'random', got {choice!r}")
        with torch.device(self.device):
            self.model = raft_large(weights=None, progress=False)
        if choice == "C_T_V1":
            self.model.load_state_dict(torch.load(weights[RAFT_C_T_V1.label], map_location=self.device, weights_only=True))
        self.model.eval().requires_grad_(False)
        self.iterations = int(self.cfg.get("iterations", 20))

    @torch.inference_mode()
    def flow(self, image1: torch.Tensor, image2: torch.Tensor) -> torch.Tensor:
        image1 = (2 * (image1 / 255.0) - 1).contiguous()  # as RAFT's forward; channels-last input is slow
        image2 = (2 * (image2 / 255.0) - 1).contiguous()
        autocast = (torch.autocast(self.device.type, dtype=self.dtype) if self.dtype != torch.float32 else nullcontext())
        with autocast:
            return self.model(image1, image2, num_flow_updates=self.iterations)[-1].float()


class DisFlow(FlowBackend):
    """OpenCV's DIS optical flow on grey frames, on the CPU: needs no weights, runs anywhere, and measures
    motion well enough for smoke runs and tests. Its magnitudes differ from RAFT's, so never comparable."""

    comparable = False
    PRESETS = {"ultrafast": 0, "fast": 1, "medium": 2}

    def load(self, weights: dict[str, str]) -> None:
        import cv2

        preset = self.cfg.get("dis_preset", "medium")
        if preset not in self.PRESETS:
            raise ValueError(f"scorer.dynamic_degree.dis_preset: expected one of {list(self.PRESETS)}, got {preset!r}")
        self.dis = cv2.DISOpticalFlow_create(self.PRESETS[preset])

    @staticmethod
    def _grey(image: torch.Tensor) -> np.ndarray:
        import cv2

        rgb = image.permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).cpu().numpy()
        return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)

    def flow(self, image1: torch.Tensor, image2: torch.Tensor) -> torch.Tensor:
        flows = [self.dis.calc(self._grey(a), self._grey(b), None) for a, b in zip(image1, image2, strict=True)]
        return torch.from_numpy(np.stack(flows)).permute(0, 3, 1, 2).to(image1.device)
