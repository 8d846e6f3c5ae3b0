"""Transformer configs/builders of the seven baselines: tiny forwards run, real configs are the published ones."""

import pytest
import torch

from omiti2v.models.architectures import (
    FAMILIES,
    TRANSFORMER_CLASSES,
    build_transformer,
    dummy_inputs,
    transformer_config,
)


def _spatial(family):
    return 16 if family == "framepack" else 8  # FramePack's 4x history patch needs 16 latent pixels


@pytest.mark.parametrize("family", FAMILIES)
def test_tiny_forward_shape_and_determinism(family):
    model = build_transformer(family, seed=0)
    inputs = dummy_inputs(family, height=_spatial(family), width=_spatial(family),
                          generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = model(**inputs)[0]
        again = build_transformer(family, seed=0)(**inputs)[0]
    latent = inputs["hidden_states"]
    assert out.shape == (latent.shape[0], 16, *latent.shape[2:])
    assert torch.isfinite(out).all()
    assert torch.equal(out, again)  # same seed, same weights, same output


def test_real_configs_are_the_published_ones():
    wan = transformer_config("wan", "real")
    assert (wan["num_layers"], wan["num_attention_heads"], wan["attention_head_dim"], wan["ffn_dim"]) == (40, 40, 128,
                                                                                                          13824)
    assert (wan["in_channels"], wan["image_dim"], wan["added_kv_proj_dim"]) == (36, 1280, 5120)
    assert transformer_config("skyreels-df", "real")["added_kv_proj_dim"] is None
    assert transformer_config("hunyuan", "real")["image_condition_type"] == "token_replace"
    framepack = transformer_config("framepack", "real")
    assert (framepack["num_layers"], framepack["num_single_layers"], framepack["has_clean_x_embedder"]) == (20, 40,
                                                                                                            True)
    # Parameter count of EasyAnimateV5.1-12b (safetensors metadata: 11,799,265,856), built without memory.
    with torch.device("meta"):
        easy = TRANSFORMER_CLASSES["easyanimate"](**transformer_config("easyanimate", "real"))
    assert sum(p.numel() for p in easy.parameters()) == 11_799_265_856


def test_dtype_cast_keeps_fp32_modules():
    model = build_transformer("wan", dtype=torch.bfloat16)
    assert model.blocks[0].attn1.to_q.weight.dtype == torch.bfloat16
    assert model.blocks[0].scale_shift_table.dtype == torch.float32  # _keep_in_fp32_modules, as from_pretrained


def test_unknown_family_and_size_fail_clearly():
    with pytest.raises(ValueError, match="unknown transformer family"):
        transformer_config("sora")
    with pytest.raises(ValueError, match="unknown size"):
        transformer_config("wan", "huge")
