"""Transformer configs and builders for the seven OmitI2V baselines (six transformer families).

`size="real"` is the published architecture (random weights, for benchmarks and `weights=random`);
`size="tiny"` keeps every interface a pipeline depends on (latent/input channels, block kinds, I2V branches,
the 512-token text context Wan's processor assumes) but shrinks widths and depths so a forward takes
milliseconds on CPU. Tiny text/image widths are the `text_dim` / `image_dim` / `text_embed_dim` /
`pooled_projection_dim` / `image_proj_dim` keys of the config: tiny encoders must emit those widths.

Families: "wan" (Wan2.1-I2V-14B-480P), "skyreels" (SkyReels-V2-I2V-14B-540P), "skyreels-df"
(SkyReels-V2-DF-14B-540P), "hunyuan" (hunyuanvideo-community/HunyuanVideo-I2V, token-replace conditioning),
"framepack" (FramePack and FramePack-F1 share one architecture), "easyanimate" (EasyAnimateV5.1-12b-zh-InP).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from diffusers import (
    EasyAnimateTransformer3DModel,
    HunyuanVideoFramepackTransformer3DModel,
    HunyuanVideoTransformer3DModel,
    SkyReelsV2Transformer3DModel,
    WanTransformer3DModel,
)

from .precision import cast_module

FAMILIES = ("wan", "skyreels", "skyreels-df", "hunyuan", "framepack", "easyanimate")
SIZES = ("tiny", "real")

TRANSFORMER_CLASSES: dict[str, type[torch.nn.Module]] = {
    "wan": WanTransformer3DModel,
    "skyreels": SkyReelsV2Transformer3DModel,
    "skyreels-df": SkyReelsV2Transformer3DModel,
    "hunyuan": HunyuanVideoTransformer3DModel,
    "framepack": HunyuanVideoFramepackTransformer3DModel,
    "easyanimate": EasyAnimateTransformer3DModel,
}


def _family_configs(wan: dict[str, Any], hunyuan: dict[str, Any], framepack_image_proj_dim: int,
                    easyanimate: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The six families at one size from the shared bases: SkyReels-V2 is the Wan architecture and FramePack the
    HunyuanVideo one, each with its own switches, so real and tiny configs cannot drift apart."""
    return {
        "wan": wan,
        "skyreels": {**wan, "inject_sample_info": False},
        "skyreels-df": {**wan, "in_channels": 16, "image_dim": None, "added_kv_proj_dim": None,
                        "inject_sample_info": True},
        "hunyuan": {**hunyuan, "image_condition_type": "token_replace"},
        "framepack": {**hunyuan, "image_condition_type": None, "has_image_proj": True,
                      "image_proj_dim": framepack_image_proj_dim, "has_clean_x_embedder": True},
        "easyanimate": easyanimate,
    }


# Published configs (the `transformer/config.json` of each checkpoint, defaults omitted where equal).
_WAN_14B_I2V = dict(
    patch_size=(1, 2, 2), num_attention_heads=40, attention_head_dim=128, in_channels=36, out_channels=16,
    text_dim=4096, freq_dim=256, ffn_dim=13824, num_layers=40, cross_attn_norm=True,
    qk_norm="rms_norm_across_heads", eps=1e-6, image_dim=1280, added_kv_proj_dim=5120, rope_max_seq_len=1024,
)
_HUNYUAN_13B = dict(
    in_channels=16, out_channels=16, num_attention_heads=24, attention_head_dim=128, num_layers=20,
    num_single_layers=40, num_refiner_layers=2, mlp_ratio=4.0, patch_size=2, patch_size_t=1, qk_norm="rms_norm",
    guidance_embeds=True, text_embed_dim=4096, pooled_projection_dim=768, rope_theta=256.0,
    rope_axes_dim=(16, 56, 56),
)
_REAL = _family_configs(_WAN_14B_I2V, _HUNYUAN_13B, framepack_image_proj_dim=1152, easyanimate=dict(
    num_attention_heads=48, attention_head_dim=64, in_channels=33, out_channels=16, patch_size=2,
    sample_width=128, sample_height=128, num_layers=48, mmdit_layers=48, time_embed_dim=512,
    add_norm_text_encoder=True, text_embed_dim=3584, text_embed_dim_t5=None, norm_eps=1e-5,
    time_position_encoding_type="3d_rope", enable_text_attention_mask=True,
))

# Tiny: 2 heads, a handful of blocks; channel counts as in the real models so tiny VAEs stay compatible.
_WAN_TINY = dict(
    patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=8, in_channels=36, out_channels=16,
    text_dim=32, freq_dim=16, ffn_dim=32, num_layers=3, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
    eps=1e-6, image_dim=32, added_kv_proj_dim=16, rope_max_seq_len=32,
)
_HUNYUAN_TINY = dict(
    in_channels=16, out_channels=16, num_attention_heads=2, attention_head_dim=10, num_layers=2,
    num_single_layers=3, num_refiner_layers=1, mlp_ratio=2.0, patch_size=2, patch_size_t=1, qk_norm="rms_norm",
    guidance_embeds=True, text_embed_dim=32, pooled_projection_dim=16, rope_theta=256.0, rope_axes_dim=(2, 4, 4),
)
_TINY = _family_configs(_WAN_TINY, _HUNYUAN_TINY, framepack_image_proj_dim=32, easyanimate=dict(
    num_attention_heads=2, attention_head_dim=16, in_channels=33, out_channels=16, patch_size=2,
    sample_width=16, sample_height=16, num_layers=3, mmdit_layers=3, time_embed_dim=16,
    add_norm_text_encoder=True, text_embed_dim=32, text_embed_dim_t5=None, norm_eps=1e-5,
    time_position_encoding_type="3d_rope", enable_text_attention_mask=True,
))


def _check(family: str, size: str) -> None:
    if family not in FAMILIES:
        raise ValueError(f"unknown transformer family {family!r}; expected one of {FAMILIES}")
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; expected one of {SIZES}")


def transformer_config(family: str, size: str = "tiny") -> dict[str, Any]:
    """The constructor kwargs of `family`'s transformer at `size` (a fresh copy; safe to edit)."""
    _check(family, size)
    return copy.deepcopy((_REAL if size == "real" else _TINY)[family])


def build_transformer(
    family: str,
    size: str = "tiny",
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
    seed: int | None = 0,
    **overrides: Any,
) -> torch.nn.Module:
    """A randomly initialised transformer in eval mode, built directly on `device`.

    Parameters are created on `device` (never a CPU copy of a 14B model) in float32 and cast one at a time to
    `dtype`, so peak memory is the float32 model plus one tensor. Modules the class keeps in float32 when
    loading pretrained weights (`_keep_in_fp32_modules`) stay float32, as in `from_pretrained`.
    """
    config = {**transformer_config(family, size), **overrides}
    cls = TRANSFORMER_CLASSES[family]
    device = torch.device(device)
    if seed is not None:
        torch.manual_seed(seed)
    with torch.device(device):
        model = cls(**config)
    return cast_module(model, dtype, buffers=False).eval().requires_grad_(False)


def dummy_inputs(
    family: str,
    size: str = "tiny",
    *,
    batch_size: int = 1,
    num_frames: int = 2,
    height: int = 8,
    width: int = 8,
    timestep: float = 999.0,
    text_tokens: int | None = None,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
    generator: torch.Generator | None = None,
) -> dict[str, Any]:
    """Random keyword inputs for one transformer forward of `family` on a latent of the given size.

    `num_frames`, `height`, `width` are latent sizes (after the VAE). For FramePack the clean/history latents
    follow the pipeline's layout for one section (1 + 2 clean frames, 2 frames at 2x, 16 frames at 4x).
    """
    config = transformer_config(family, size)
    device = torch.device(device)

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator, dtype=torch.float32).to(device=device, dtype=dtype)

    b = batch_size
    t = torch.full((b,), float(timestep), device=device)
    if family in ("wan", "skyreels", "skyreels-df"):
        inputs = {
            "hidden_states": randn(b, config["in_channels"], num_frames, height, width),
            "timestep": t,
            # Wan's cross-attention splits image from text tokens by assuming exactly 512 text tokens.
            "encoder_hidden_states": randn(b, text_tokens or 512, config["text_dim"]),
            "return_dict": False,
        }
        if config["image_dim"] is not None:
            inputs["encoder_hidden_states_image"] = randn(b, 257, config["image_dim"])
        if family == "skyreels-df":
            # Diffusion forcing: one timestep per latent frame; the conditioning frame is clean (t = 0).
            per_frame = t[:, None].expand(b, num_frames).clone()
            per_frame[:, 0] = 0.0
            inputs.update(timestep=per_frame, enable_diffusion_forcing=True, fps=[1] * b)  # 1 = "not 16 fps"
        return inputs
    if family in ("hunyuan", "framepack"):
        n_text = text_tokens or 16
        mask = torch.ones(b, n_text, dtype=torch.long, device=device)
        mask[:, n_text * 3 // 4:] = 0  # padded prompt tail, so the joint-attention mask is exercised
        inputs = {
            "hidden_states": randn(b, config["in_channels"], num_frames, height, width),
            "timestep": t,
            "encoder_hidden_states": randn(b, n_text, config["text_embed_dim"]),
            "encoder_attention_mask": mask,
            "pooled_projections": randn(b, config["pooled_projection_dim"]),
            "guidance": torch.full((b,), 6000.0, device=device),
            "return_dict": False,
        }
        if family == "framepack":
            frame = lambda n, start: torch.arange(start, start + n, device=device)  # noqa: E731  (1-D, shared)
            inputs.update(
                image_embeds=randn(b, 729 if size == "real" else 9, config["image_proj_dim"]),
                indices_latents=frame(num_frames, 3),
                latents_clean=randn(b, 16, 3, height, width),
                indices_latents_clean=frame(3, 0),
                latents_history_2x=randn(b, 16, 2, height, width),
                indices_latents_history_2x=frame(2, 3 + num_frames),
                latents_history_4x=randn(b, 16, 16, height, width),
                indices_latents_history_4x=frame(16, 5 + num_frames),
            )
        return inputs
    # easyanimate: inpaint latents (16 masked-video channels + 1 mask) ride next to the noisy latent.
    return {
        "hidden_states": randn(b, 16, num_frames, height, width),
        "timestep": t,
        "encoder_hidden_states": randn(b, text_tokens or 16, config["text_embed_dim"]),
        "inpaint_latents": randn(b, config["in_channels"] - 16, num_frames, height, width),
        "return_dict": False,
    }
