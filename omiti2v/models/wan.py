"""Wan2.1-I2V-14B-480P as the official Wan generate code runs it, and `_WanLike`, the Wan-architecture builders
SkyReels-V2 and Wan2.2 share.

Wan2.1's config (conf/model/wan2.1.yaml) chooses, each as the official code does unless overridden:
`sampling.scheduler` the official flow-matching UniPC (`WanFlowUniPCScheduler`, shift 3) or a diffusers scheduler;
`image_input: official` the whole image stretched (bicubic, no crop) for the VAE and for CLIP
(`official_inputs`), or `diffusers` (cover-resize + centre crop, then CLIP's own resize + crop);
`precision` per component (`precision`); `noise: device` draws the noise with a generator on the run's device
(official: a CUDA generator per sample seeded with the run's seed).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from PIL import Image

from .base import DTYPES, Baseline, C
from .settings import check_precision
from .sizing import target_size
from .tokenizers import local_tokenizer

PIPELINE_COMPONENTS = ("transformer", "vae", "text_encoder", "image_encoder")


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
        if self.uses_image_encoder:  # the image tower runs in float32
            from transformers import CLIPVisionModel, CLIPVisionModelWithProjection

            cls = CLIPVisionModelWithProjection if self.image_encoder_projection else CLIPVisionModel
            extra["image_encoder"] = cls.from_pretrained(ckpt, subfolder="image_encoder", dtype=torch.float32)
        return self.pipeline_class().from_pretrained(ckpt, torch_dtype=dtype, **extra)


class Wan21(_WanLike):
    family = "wan"
    pipeline = "WanImageToVideoPipeline"
    extra_keys = ("image_input", "precision")

    def settings(self, model_cfg: Mapping | None = None) -> dict:
        settings = super().settings(model_cfg)
        check_precision(settings["precision"], PIPELINE_COMPONENTS)
        return settings

    def build(self, settings: Mapping, device: str | torch.device = "cpu"):
        from .official_inputs import use_official_wan_inputs
        from .precision import apply_float32_autocast, cast_components, component_dtypes

        pipe = super().build(settings, device)
        precision = settings["precision"] or {}
        if settings["weights"] != "pretrained":
            cast_components(pipe, component_dtypes(precision, DTYPES))
        if pipe.transformer.dtype == torch.float32 and DTYPES[settings["dtype"]] != torch.float32:
            apply_float32_autocast(pipe.transformer, DTYPES[settings["dtype"]])
        if settings["image_input"] == "official":
            use_official_wan_inputs(pipe)
        return pipe

    def from_pretrained(self, settings: Mapping, dtype: torch.dtype):
        """Each component loaded straight in its configured dtype (no double rounding through `dtype`)."""
        from transformers import CLIPVisionModel

        from .precision import component_dtypes

        ckpt = settings["checkpoint"]
        dtypes = {"default": dtype, **component_dtypes(settings["precision"], DTYPES)}
        encoder = CLIPVisionModel.from_pretrained(ckpt, subfolder="image_encoder",
                                                  dtype=dtypes.get("image_encoder", dtype))
        return self.pipeline_class().from_pretrained(ckpt, torch_dtype=dtypes, image_encoder=encoder)

    def prepare_image(self, image: Image.Image, settings: Mapping) -> tuple[Image.Image, int, int]:
        """Official input: the whole image (the pipeline's preprocessors stretch it); else cover + centre crop."""
        if settings["image_input"] == "diffusers":
            return super().prepare_image(image, settings)
        height, width = target_size(settings["sizing"], image.width, image.height)
        return image.convert("RGB"), height, width
