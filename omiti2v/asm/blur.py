"""Pilot-study baselines: Gaussian blur of the input image and of the attention key."""

from __future__ import annotations

import math

import torch
from PIL import Image, ImageFilter

from omiti2v.asm.config import ASMConfig
from omiti2v.asm.processors import AttentionCall


def blur_input_image(image: Image.Image, radius: float = 1, short_side: int = 512) -> Image.Image:
    """The official FramePack pilot: when both sides exceed `short_side`, resize the short side to it (Lanczos),
    then PIL GaussianBlur(radius)."""
    width, height = image.size
    if width > short_side and height > short_side:
        factor = short_side / min(width, height)
        image = image.resize((round(width * factor), round(height * factor)), Image.LANCZOS)
    return image.filter(ImageFilter.GaussianBlur(radius))


def gaussian_kernel(kernel_size: int, sigma: float) -> list[float]:
    offsets = range(-(kernel_size // 2), kernel_size // 2 + 1)
    weights = [math.exp(-(x * x) / (2 * sigma * sigma)) for x in offsets]
    return [w / sum(weights) for w in weights]


def blur_tokens(x: torch.Tensor, dim: int, kernel_size: int = 3, sigma: float = 0.5) -> torch.Tensor:
    """1-D Gaussian blur of `x` along the token axis `dim` (edges replicated), in x's dtype."""
    radius = kernel_size // 2
    n = x.shape[dim]
    positions = torch.arange(n, device=x.device)
    out = torch.zeros_like(x)
    for offset, weight in zip(range(-radius, radius + 1), gaussian_kernel(kernel_size, sigma), strict=True):
        out.add_(x.index_select(dim, (positions + offset).clamp(0, n - 1)), alpha=weight)
    return out


class KeyBlur:
    """Handler: blurs K along the tokens (kernel 3, sigma 0.5 by default) at the sites whose K the recipe
    would scale (`k_sites`), in the selected blocks and steps; the logits are not rescaled. `call.strength` is
    the blend weight towards the blurred key: 1 there, 0 elsewhere (`torch.lerp` returns either end exactly)."""

    def __init__(self, config: ASMConfig):
        self.config = config

    @staticmethod
    def strength(config: ASMConfig, role: str) -> float:
        return 1.0 if role in config.k_sites else 0.0

    identity = 0.0

    def __call__(self, call: AttentionCall) -> None:
        if call.idle:
            return
        token_dim = 1 if call.layout == "BSHD" else 2
        blurred = blur_tokens(call.key, token_dim, self.config.blur_kernel_size, self.config.blur_sigma)
        call.key = torch.lerp(call.key, blurred, call.strength.to(call.key.dtype))
