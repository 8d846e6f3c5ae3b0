"""Wan2.1-I2V-14B-480P (REFERENCE §3, §8) and `_WanLike`, the Wan-architecture builders SkyReels-V2 and Wan2.2
share."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from .base import Baseline, C
from .tokenizers import local_tokenizer


class _WanLike(Baseline):
    image_encoder_projection = False
    uses_image_encoder = True

    def components(self, size: str, transformer) -> dict:
        cfg = transformer.config
        out = {
            "transformer": transformer,
            "vae": C.wan_vae(size, cfg.out_channels),
            "text_encoder": C.umt5_encoder(size, cfg.text_dim),
            "tokenizer": local_tokenizer(512),
        }
        if self.uses_image_encoder:
            encoder, processor = C.clip_vision_encoder(size, cfg.image_dim, self.image_encoder_projection)
            out.update(image_encoder=encoder, image_processor=processor)
        return out

    def from_pretrained(self, settings: Mapping, dtype: torch.dtype):
        from diffusers import AutoencoderKLWan

        ckpt = settings["checkpoint"]
        extra = {"vae": AutoencoderKLWan.from_pretrained(ckpt, subfolder="vae", torch_dtype=torch.float32)}
        if self.uses_image_encoder:  # the image tower runs in float32, as in the official scripts
            from transformers import CLIPVisionModel, CLIPVisionModelWithProjection

            cls = CLIPVisionModelWithProjection if self.image_encoder_projection else CLIPVisionModel
            extra["image_encoder"] = cls.from_pretrained(ckpt, subfolder="image_encoder", dtype=torch.float32)
        return self.pipeline_class().from_pretrained(ckpt, torch_dtype=dtype, **extra)


class Wan21(_WanLike):
    family = "wan"
    pipeline = "WanImageToVideoPipeline"
