"""Newer image-to-video baselines (not in the paper): Wan2.2-I2V-A14B, HunyuanVideo-1.5 I2V, LTX-Video I2V.

Same `Baseline` contract as the seven paper baselines (registry.py): pretrained / random real-size / tiny
builds, the sampling settings of the official model card or diffusers docs (cited in conf/model/<name>.yaml),
output fps and image sizing. No AlignVid numbers exist for them; their ASM presets ("our default", γ 1.35,
early window, one attention role each) are at the end of `omiti2v/asm/presets.py`.

Wan2.2-I2V-A14B is a mixture of two experts: the pipeline runs `transformer` (high noise) while
t >= boundary_ratio * 1000 = 900 and `transformer_2` (low noise) after, so the early window t > 900 falls on
the high-noise expert. `apply_asm(pipe, ...)` installs hooks on every transformer of the pipeline, and each
expert gates on its own timestep, so ASM follows whichever expert runs.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from .architectures_modern import (
    build_modern_transformer,
    byt5_encoder,
    hunyuan15_vae,
    ltx_vae,
    modern_transformer_config,
    qwen25vl_text_encoder,
    t5_xxl_encoder,
)
from .base import Baseline, C
from .tokenizers import local_tokenizer
from .wan import _WanLike


class _ModernBaseline(Baseline):
    """Transformer configs live in architectures_modern.py (not the paper families' architectures.py)."""

    def architecture_config(self, size: str) -> dict:
        return modern_transformer_config(self.family, size)

    def build_transformer(self, size: str, dtype: torch.dtype, device, seed: int = 0):
        return build_modern_transformer(self.family, size, dtype, device, seed=seed)


# ---- Wan2.2-I2V-A14B ------------------------------------------------------------------------------------------

class Wan22I2V(_ModernBaseline, _WanLike):
    family = "wan2.2"
    pipeline = "WanImageToVideoPipeline"
    uses_image_encoder = False
    boundary_ratio = 0.9

    def components(self, size: str, transformer) -> dict:
        low_noise = self.build_transformer(size, transformer.dtype, transformer.device, seed=1)
        return {**super().components(size, transformer), "transformer_2": low_noise,
                "boundary_ratio": self.boundary_ratio}


# ---- HunyuanVideo-1.5 I2V -------------------------------------------------------------------------------------

# HunyuanVideo-1.5 feeds the prompt through a chat template with string content (system + user messages).
_STRING_CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
# Tiny builds shorten the fixed text lengths (1000 MLLM + 256 glyph tokens) so a CPU step stays milliseconds.
_TINY_TEXT_LENGTHS = {"tokenizer_max_length": 24, "tokenizer_2_max_length": 8, "prompt_template_encode_start_idx": 0}


class HunyuanVideo15I2V(_ModernBaseline):
    family = "hunyuan-video-1.5"
    pipeline = "HunyuanVideo15ImageToVideoPipeline"
    extra_keys = ("guidance_scale",)  # the guider component's scale, not a call argument

    def forwards_per_step(self, sampling) -> int:
        return 2  # the guider's classifier-free guidance runs cond + uncond (guidance 6.0)

    def components(self, size: str, transformer) -> dict:
        from diffusers import ClassifierFreeGuidance
        from transformers import ByT5Tokenizer

        cfg = transformer.config
        image_encoder, feature_extractor = C.siglip_vision_encoder(size, cfg.image_embed_dim)
        tokenizer = local_tokenizer(2048)
        tokenizer.chat_template = _STRING_CHAT_TEMPLATE
        return {
            "transformer": transformer,
            "vae": hunyuan15_vae(size, cfg.out_channels),
            "text_encoder": qwen25vl_text_encoder(size, cfg.text_embed_dim),
            "tokenizer": tokenizer,
            "text_encoder_2": byt5_encoder(size, cfg.text_embed_2_dim),
            "tokenizer_2": ByT5Tokenizer(),
            "guider": ClassifierFreeGuidance(),
            "image_encoder": image_encoder,
            "feature_extractor": feature_extractor,
        }

    def build(self, settings: Mapping, device="cpu"):
        pipe = super().build(settings, device)
        scale = float(settings["guidance_scale"])  # the configured value wins over a checkpoint's guider config
        if scale != pipe.guider.guidance_scale:
            pipe.guider = type(pipe.guider).from_config(pipe.guider.config, guidance_scale=scale)
        if settings["weights"] == "tiny":
            for name, value in _TINY_TEXT_LENGTHS.items():
                setattr(pipe, name, value)
        return pipe

    def call_kwargs(self, pipe, image, prompt, height, width, settings) -> dict:
        kwargs = super().call_kwargs(pipe, image, prompt, height, width, settings)
        del kwargs["height"], kwargs["width"]  # not call arguments: the pipeline sizes from the image (same rule)
        return kwargs


# ---- LTX-Video I2V ---------------------------------------------------------------------------------------------

class LTXVideoI2V(_ModernBaseline):
    family = "ltx-video"
    pipeline = "LTXImageToVideoPipeline"

    def check_sampling(self, sampling) -> None:
        n = int(sampling["num_frames"])
        if (n - 1) % 8:
            raise ValueError(f"model.sampling.num_frames={n}: must be 8k+1 (the LTX VAE compresses time by 8)")

    def components(self, size: str, transformer) -> dict:
        cfg = transformer.config
        return {
            "transformer": transformer,
            "vae": ltx_vae(size, cfg.in_channels),
            "text_encoder": t5_xxl_encoder(size, cfg.caption_channels),
            "tokenizer": local_tokenizer(128),
        }

    def call_kwargs(self, pipe, image, prompt, height, width, settings) -> dict:
        # `frame_rate` scales LTX's temporal RoPE: it must be the fps the video is written at.
        return {**super().call_kwargs(pipe, image, prompt, height, width, settings),
                "frame_rate": int(settings["fps"])}
