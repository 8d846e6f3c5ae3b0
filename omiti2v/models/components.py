"""Every pipeline component except the transformer, built from configs with random weights (no download).

`size="real"` gives the published architectures (for GPU dry runs and the planner: the memory and compute are
the real ones, the outputs are noise); `size="tiny"` gives a few-kilobyte version for CPU tests. Widths that must
agree with the transformer (text width, pooled width, image width, latent channels) are read from the
transformer's config, so any transformer `architectures.build_transformer` returns gets matching encoders.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from transformers import (
    CLIPImageProcessor,
    CLIPTextConfig,
    CLIPTextModel,
    CLIPVisionConfig,
    CLIPVisionModel,
    CLIPVisionModelWithProjection,
    LlamaConfig,
    LlamaModel,
    LlavaConfig,
    LlavaForConditionalGeneration,
    Qwen2VLConfig,
    Qwen2VLForConditionalGeneration,
    SiglipImageProcessor,
    SiglipVisionConfig,
    SiglipVisionModel,
    UMT5Config,
    UMT5EncoderModel,
)

from .tokenizers import local_tokenizer

TINY_VOCAB = 400
# Image token of the Llava text encoder in HunyuanVideo-I2V (its tokenizer's `<image>`); tiny uses the local one.
LLAVA_IMAGE_TOKEN_REAL = 128257


@contextlib.contextmanager
def building(device: str | torch.device, dtype: torch.dtype) -> Iterator[None]:
    """Allocate parameters directly on `device` in `dtype`: billions of random weights never touch the CPU."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            yield
    finally:
        torch.set_default_dtype(previous)


def _heads(width: int, preferred: int = 2) -> int:
    return preferred if width % preferred == 0 else 1


# ---- text encoders -------------------------------------------------------------------------------------------

def umt5_encoder(size: str, width: int) -> UMT5EncoderModel:
    """UMT5-XXL encoder (Wan2.1, SkyReels-V2)."""
    if size == "real":
        config = UMT5Config(vocab_size=256384, d_model=4096, d_ff=10240, d_kv=64, num_heads=64, num_layers=24,
                            feed_forward_proj="gated-gelu", relative_attention_num_buckets=32,
                            relative_attention_max_distance=128, tie_word_embeddings=False)
    else:
        config = UMT5Config(vocab_size=TINY_VOCAB, d_model=width, d_ff=32, d_kv=width // 2, num_heads=2, num_layers=1,
                            feed_forward_proj="gated-gelu", relative_attention_num_buckets=8)
    return UMT5EncoderModel(config).eval()


def _llama_config(size: str, width: int) -> LlamaConfig:
    if size == "real":  # Llama-3-8B (llava-llama-3-8b text tower in HunyuanVideo)
        return LlamaConfig(vocab_size=128320, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                           num_attention_heads=32, num_key_value_heads=8, rope_theta=500000.0, pad_token_id=0)
    return LlamaConfig(vocab_size=TINY_VOCAB, hidden_size=width, intermediate_size=32, num_hidden_layers=3,
                       num_attention_heads=2, num_key_value_heads=2, pad_token_id=0, bos_token_id=1, eos_token_id=2)


def llama_encoder(size: str, width: int) -> LlamaModel:
    """Llama text encoder of HunyuanVideo / FramePack (hidden state 3 from the end is the prompt embedding)."""
    return LlamaModel(_llama_config(size, width)).eval()


def llava_encoder(size: str, width: int) -> tuple[LlavaForConditionalGeneration, int]:
    """Llava-Llama-3 text encoder of HunyuanVideo-I2V, and the number of image tokens its vision tower emits."""
    if size == "real":
        vision = CLIPVisionConfig(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24,
                                  num_attention_heads=16, image_size=336, patch_size=14, projection_dim=768)
        image_token = LLAVA_IMAGE_TOKEN_REAL
    else:
        vision = CLIPVisionConfig(hidden_size=8, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2,
                                  image_size=32, patch_size=8, projection_dim=8)
        image_token = local_tokenizer().convert_tokens_to_ids("<image>")
    config = LlavaConfig(vision_config=vision, text_config=_llama_config(size, width), image_token_index=image_token,
                         pad_token_id=0)
    image_tokens = (vision.image_size // vision.patch_size) ** 2
    return LlavaForConditionalGeneration(config).eval(), image_tokens


def clip_text_encoder(size: str, width: int) -> CLIPTextModel:
    """CLIP ViT-L/14 text tower: the pooled prompt vector of HunyuanVideo / FramePack."""
    if size == "real":
        config = CLIPTextConfig(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                                num_attention_heads=12, max_position_embeddings=77, projection_dim=768)
    else:
        config = CLIPTextConfig(vocab_size=TINY_VOCAB, hidden_size=width, intermediate_size=16, num_hidden_layers=1,
                                num_attention_heads=_heads(width), max_position_embeddings=77, projection_dim=width,
                                pad_token_id=0, bos_token_id=1, eos_token_id=2)
    return CLIPTextModel(config).eval()


def qwen2vl_encoder(size: str, width: int) -> Qwen2VLForConditionalGeneration:
    """Qwen2-VL-7B-Instruct, EasyAnimate V5.1's text encoder (hidden state 2 from the end)."""
    if size == "real":
        text = dict(vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                    num_attention_heads=28, num_key_value_heads=4,
                    rope_scaling={"type": "mrope", "mrope_section": [16, 24, 24]})
        vision = dict(depth=32, embed_dim=1280, hidden_size=3584, num_heads=16)
    else:
        text = dict(vocab_size=TINY_VOCAB, hidden_size=width, intermediate_size=32, num_hidden_layers=2,
                    num_attention_heads=2, num_key_value_heads=1, bos_token_id=1, eos_token_id=2,
                    rope_scaling={"type": "mrope", "mrope_section": [width // 8, width // 16, width // 16]})
        vision = dict(depth=1, embed_dim=16, hidden_size=width, num_heads=2)
    ids = {} if size == "real" else {"bos_token_id": 1, "eos_token_id": 2}
    return Qwen2VLForConditionalGeneration(Qwen2VLConfig(text_config=text, vision_config=vision, **ids)).eval()


# ---- image encoders ------------------------------------------------------------------------------------------

def clip_vision_encoder(size: str, width: int, with_projection: bool = False):
    """open-clip ViT-H/14 image tower (Wan2.1 / SkyReels-V2 I2V image conditioning) and its processor."""
    if size == "real":
        config = CLIPVisionConfig(hidden_size=1280, intermediate_size=5120, num_hidden_layers=32,
                                  num_attention_heads=16, image_size=224, patch_size=14, projection_dim=1024,
                                  hidden_act="gelu")
    else:
        config = CLIPVisionConfig(hidden_size=width, intermediate_size=16, num_hidden_layers=2,
                                  num_attention_heads=_heads(width), image_size=32, patch_size=8, projection_dim=width)
    model = (CLIPVisionModelWithProjection if with_projection else CLIPVisionModel)(config).eval()
    processor = CLIPImageProcessor(size={"shortest_edge": config.image_size},
                                   crop_size={"height": config.image_size, "width": config.image_size})
    return model, processor


def siglip_vision_encoder(size: str, width: int):
    """SigLIP so400m-patch14-384 (FramePack's image encoder, from flux_redux_bfl) and its processor."""
    if size == "real":
        config = SiglipVisionConfig(hidden_size=1152, intermediate_size=4304, num_hidden_layers=27,
                                    num_attention_heads=16, image_size=384, patch_size=14)
    else:
        config = SiglipVisionConfig(hidden_size=width, intermediate_size=16, num_hidden_layers=1,
                                    num_attention_heads=_heads(width), image_size=32, patch_size=8)
    processor = SiglipImageProcessor(size={"height": config.image_size, "width": config.image_size})
    return SiglipVisionModel(config).eval(), processor


# ---- VAEs ----------------------------------------------------------------------------------------------------

def wan_vae(size: str, channels: int):
    """Wan2.1 causal 3D VAE (8x spatial, 4x temporal); the diffusers defaults are the released config."""
    from diffusers import AutoencoderKLWan

    if size == "real":
        return AutoencoderKLWan().eval()
    stats = {} if channels == 16 else {"latents_mean": [0.0] * channels, "latents_std": [1.0] * channels}
    return AutoencoderKLWan(base_dim=3, z_dim=channels, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                            temperal_downsample=[False, True, True], **stats).eval()


def hunyuan_vae(size: str, channels: int):
    """HunyuanVideo causal 3D VAE (8x spatial, 4x temporal); the diffusers defaults are the released config."""
    from diffusers import AutoencoderKLHunyuanVideo

    if size == "real":
        return AutoencoderKLHunyuanVideo(latent_channels=channels).eval()
    blocks = 4
    return AutoencoderKLHunyuanVideo(
        latent_channels=channels, down_block_types=("HunyuanVideoDownBlock3D",) * blocks,
        up_block_types=("HunyuanVideoUpBlock3D",) * blocks, block_out_channels=(8,) * blocks, layers_per_block=1,
        norm_num_groups=4, spatial_compression_ratio=8, temporal_compression_ratio=4, mid_block_add_attention=True,
    ).eval()


def magvit_vae(size: str, channels: int):
    """EasyAnimate V5.1 MagViT VAE (8x spatial, 4x temporal)."""
    from diffusers import AutoencoderKLMagvit

    down = ("SpatialDownBlock3D", "SpatialTemporalDownBlock3D", "SpatialTemporalDownBlock3D", "SpatialTemporalDownBlock3D")
    up = ("SpatialUpBlock3D", "SpatialTemporalUpBlock3D", "SpatialTemporalUpBlock3D", "SpatialTemporalUpBlock3D")
    if size == "real":
        vae = AutoencoderKLMagvit(latent_channels=channels, down_block_types=down, up_block_types=up,
                                  block_out_channels=(128, 256, 512, 512), layers_per_block=2,
                                  spatial_group_norm=True)
    else:
        vae = AutoencoderKLMagvit(latent_channels=channels, down_block_types=down, up_block_types=up,
                                  block_out_channels=(8, 8, 8, 8), layers_per_block=1, norm_num_groups=2,
                                  spatial_group_norm=False)
    # Key of the released vae/config.json (not an __init__ argument) that the inpaint pipeline reads.
    vae.register_to_config(cache_mag_vae=True)
    return vae.eval()
