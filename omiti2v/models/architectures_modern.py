"""Architectures of the newer baselines (Wan2.2-I2V-A14B, HunyuanVideo-1.5 I2V, LTX-Video I2V), random weights.

`size="real"` is the published `config.json` of each component (numbers written here, no download), for the
planner and GPU dry runs; `size="tiny"` keeps every interface the pipeline depends on (latent channels, the
VAE's compression factors, text/image widths the transformer expects) at toy widths for CPU tests. As in
`components.py`, encoder widths are read from the transformer config so tiny parts always agree.

Sources (hub `config.json` files / the diffusers conversion scripts):
  Wan-AI/Wan2.2-I2V-A14B-Diffusers        transformer, transformer_2: Wan 14B I2V without the CLIP image branch
                                         (added_kv_proj_dim / image_dim null), boundary_ratio 0.9
  hunyuanvideo-community/HunyuanVideo-1.5-480p_i2v   8.3B transformer (54 double-stream blocks, 16 x 128
                                         heads, in 65 = 32 noisy + 32 image + 1 mask), target_size 480; VAE 16x
                                         spatial / 4x temporal, 32 channels; Qwen2.5-VL-7B text tower; byT5-small
                                         glyph encoder (d_model 1472); SigLIP so400m-patch14-384 image tower
  Lightricks/LTX-Video (0.9.0 diffusers layout)      2B transformer (28 blocks, 32 x 64 heads, 128 latent
                                         channels); VAE 32x spatial / 8x temporal; T5-v1.1-XXL text encoder
"""

from __future__ import annotations

from typing import Any

import torch
from diffusers import (
    AutoencoderKLHunyuanVideo15,
    AutoencoderKLLTXVideo,
    HunyuanVideo15Transformer3DModel,
    LTXVideoTransformer3DModel,
    WanTransformer3DModel,
)
from transformers import Qwen2_5_VLTextConfig, Qwen2_5_VLTextModel, T5Config, T5EncoderModel

from .components import TINY_VOCAB

# ---- transformers -------------------------------------------------------------------------------------------

_WAN22_REAL = dict(
    patch_size=(1, 2, 2), num_attention_heads=40, attention_head_dim=128, in_channels=36, out_channels=16,
    text_dim=4096, freq_dim=256, ffn_dim=13824, num_layers=40, cross_attn_norm=True,
    qk_norm="rms_norm_across_heads", eps=1e-6, image_dim=None, added_kv_proj_dim=None, rope_max_seq_len=1024,
)
_WAN22_TINY = dict(
    patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=8, in_channels=36, out_channels=16,
    text_dim=32, freq_dim=16, ffn_dim=32, num_layers=3, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
    eps=1e-6, image_dim=None, added_kv_proj_dim=None, rope_max_seq_len=32,
)
_HV15_REAL = dict(
    in_channels=65, out_channels=32, num_attention_heads=16, attention_head_dim=128, num_layers=54,
    num_refiner_layers=2, mlp_ratio=4.0, patch_size=1, patch_size_t=1, qk_norm="rms_norm", text_embed_dim=3584,
    text_embed_2_dim=1472, image_embed_dim=1152, rope_theta=256.0, rope_axes_dim=(16, 56, 56), target_size=480,
    task_type="i2v", use_meanflow=False,
)
_HV15_TINY_LATENT = 4
_HV15_TINY = dict(
    in_channels=2 * _HV15_TINY_LATENT + 1, out_channels=_HV15_TINY_LATENT, num_attention_heads=2,
    attention_head_dim=10, num_layers=2, num_refiner_layers=1, mlp_ratio=2.0, patch_size=1, patch_size_t=1,
    qk_norm="rms_norm", text_embed_dim=32, text_embed_2_dim=16, image_embed_dim=16, rope_theta=256.0,
    rope_axes_dim=(2, 4, 4), target_size=64, task_type="i2v", use_meanflow=False,
)
_LTX_REAL = dict(
    in_channels=128, out_channels=128, patch_size=1, patch_size_t=1, num_attention_heads=32, attention_head_dim=64,
    cross_attention_dim=2048, num_layers=28, activation_fn="gelu-approximate", qk_norm="rms_norm_across_heads",
    norm_elementwise_affine=False, norm_eps=1e-6, caption_channels=4096, attention_bias=True,
    attention_out_bias=True,
)
_LTX_TINY_LATENT = 8
_LTX_TINY = {**_LTX_REAL, "in_channels": _LTX_TINY_LATENT, "out_channels": _LTX_TINY_LATENT,
             "num_attention_heads": 2, "attention_head_dim": 8, "cross_attention_dim": 16, "num_layers": 2,
             "caption_channels": 32}

ARCHITECTURES: dict[str, tuple[type[torch.nn.Module], dict[str, Any], dict[str, Any]]] = {
    # family -> (transformer class, real config, tiny config)
    "wan2.2": (WanTransformer3DModel, _WAN22_REAL, _WAN22_TINY),
    "hunyuan-video-1.5": (HunyuanVideo15Transformer3DModel, _HV15_REAL, _HV15_TINY),
    "ltx-video": (LTXVideoTransformer3DModel, _LTX_REAL, _LTX_TINY),
}


def modern_transformer_config(family: str, size: str) -> dict[str, Any]:
    """Constructor kwargs of `family`'s transformer at `size` ("real" | "tiny"), a fresh copy."""
    if family not in ARCHITECTURES or size not in ("real", "tiny"):
        raise ValueError(f"unknown family/size {family!r}/{size!r}; families: {sorted(ARCHITECTURES)}")
    return dict(ARCHITECTURES[family][1 if size == "real" else 2])


def build_modern_transformer(family: str, size: str, dtype: torch.dtype, device: str | torch.device,
                             seed: int = 0) -> torch.nn.Module:
    """A random transformer built directly on `device`; `_keep_in_fp32_modules` stay float32 as when loading."""
    cls = ARCHITECTURES[family][0]
    torch.manual_seed(seed)
    with torch.device(device):
        model = cls(**modern_transformer_config(family, size))
    keep_fp32 = set(getattr(cls, "_keep_in_fp32_modules", None) or ())
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.dtype != dtype and not keep_fp32.intersection(name.split(".")):
                param.data = param.data.to(dtype)
    return model.eval().requires_grad_(False)


# ---- text encoders ------------------------------------------------------------------------------------------

def qwen25vl_text_encoder(size: str, width: int) -> Qwen2_5_VLTextModel:
    """Qwen2.5-VL-7B-Instruct text tower (HunyuanVideo-1.5's prompt encoder; hidden state 3 from the end)."""
    if size == "real":
        config = Qwen2_5_VLTextConfig(vocab_size=152064, hidden_size=3584, intermediate_size=18944,
                                      num_hidden_layers=28, num_attention_heads=28, num_key_value_heads=4,
                                      rope_scaling={"type": "mrope", "mrope_section": [16, 24, 24]})
    else:
        config = Qwen2_5_VLTextConfig(vocab_size=TINY_VOCAB, hidden_size=width, intermediate_size=32,
                                      num_hidden_layers=3, num_attention_heads=2, num_key_value_heads=1,
                                      bos_token_id=1, eos_token_id=2, rope_scaling={"type": "mrope",
                                                    "mrope_section": [width // 8, width // 16, width // 16]})
    return Qwen2_5_VLTextModel(config).eval()


def _t5_encoder(size: str, width: int, real: dict[str, Any], tiny: dict[str, Any]) -> T5EncoderModel:
    """A gated-GELU T5 encoder: the `real` shapes with an untied head as published, or one toy layer of `width`
    with the `tiny` vocabulary and head width."""
    if size == "real":
        config = T5Config(**real, feed_forward_proj="gated-gelu", tie_word_embeddings=False)
    else:
        config = T5Config(**tiny, d_model=width, d_ff=32, num_heads=2, num_layers=1, feed_forward_proj="gated-gelu",
                          relative_attention_num_buckets=8)
    return T5EncoderModel(config).eval()


def byt5_encoder(size: str, width: int) -> T5EncoderModel:
    """byT5-small encoder (Glyph-SDXL-v2 weights in HunyuanVideo-1.5): encodes quoted text in the prompt."""
    published = dict(vocab_size=384, d_model=1472, d_ff=3584, d_kv=64, num_heads=6, num_layers=12)
    return _t5_encoder(size, width, real=published, tiny=dict(vocab_size=384, d_kv=8))


def t5_xxl_encoder(size: str, width: int) -> T5EncoderModel:
    """T5-v1.1-XXL encoder (LTX-Video's prompt encoder)."""
    published = dict(vocab_size=32128, d_model=4096, d_ff=10240, d_kv=64, num_heads=64, num_layers=24)
    return _t5_encoder(size, width, real=published, tiny=dict(vocab_size=TINY_VOCAB, d_kv=width // 2))


# ---- VAEs ---------------------------------------------------------------------------------------------------

def hunyuan15_vae(size: str, channels: int) -> AutoencoderKLHunyuanVideo15:
    """HunyuanVideo-1.5 VAE (16x spatial, 4x temporal); the diffusers defaults are the released config."""
    if size == "real":
        return AutoencoderKLHunyuanVideo15().eval()
    return AutoencoderKLHunyuanVideo15(latent_channels=channels, block_out_channels=(8, 8, 8, 8, 8),
                                       layers_per_block=1).eval()


def ltx_vae(size: str, channels: int) -> AutoencoderKLLTXVideo:
    """LTX-Video 0.9.0 VAE (32x spatial, 8x temporal); the diffusers defaults are the released config."""
    if size == "real":
        return AutoencoderKLLTXVideo().eval()
    return AutoencoderKLLTXVideo(latent_channels=channels, block_out_channels=(8, 8, 8, 8),
                                 decoder_block_out_channels=(8, 8, 8, 8), layers_per_block=(1, 1, 1, 1, 1),
                                 decoder_layers_per_block=(1, 1, 1, 1, 1)).eval()
