"""The official precision paths on tiny models, each layer checked against a plain statement of what it should
compute: Wan2.1's float32 weights under bf16 autocast (matmuls in bf16, time embedding, residual stream and head in
float32) and FramePack's float32 output projection and float16 components."""

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from omiti2v.models import get_baseline
from omiti2v.models.architectures import dummy_inputs

WAN = {"weights": "tiny", "dtype": "bfloat16", "sizing": {"mode": "max_area", "max_area": 2560, "multiple": 16},
       "sampling": {"num_frames": 5, "num_inference_steps": 2}}


def record_io(modules: dict[str, torch.nn.Module]) -> dict[str, tuple]:
    """name -> (first positional input, output) of each module's latest call."""
    seen = {}
    for name, module in modules.items():
        module.register_forward_hook(lambda m, args, out, name=name: seen.__setitem__(name, (args[0] if args else None, out)))
    return seen


def test_wan_float32_weights_run_under_bf16_autocast_as_the_official_model():
    baseline = get_baseline("wan2.1")
    pipe = baseline.build(baseline.settings({**WAN, "precision": {"transformer": "float32"}}))
    model = pipe.transformer
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    block = model.blocks[0]
    seen = record_io({"to_q": block.attn1.to_q, "ffn_out": block.ffn.net[-1], "block": block, "last": model.blocks[-1],
                      "time_proj": model.condition_embedder.time_proj, "proj_out": model.proj_out})
    inputs = dummy_inputs("wan", "tiny", dtype=torch.float32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = model(**inputs)[0]
    assert out.dtype == torch.float32
    # matmuls in bf16: to_q equals a plain bf16 linear of its input
    x, q = seen["to_q"]
    assert q.dtype == torch.bfloat16
    assert torch.equal(q, F.linear(x.bfloat16(), block.attn1.to_q.weight.bfloat16(), block.attn1.to_q.bias.bfloat16()))
    assert seen["ffn_out"][1].dtype == torch.bfloat16
    # the residual stream, the time projection and the head stay float32, the head a plain float32 linear
    assert seen["block"][1].dtype == seen["last"][1].dtype == torch.float32
    t_in, t_out = seen["time_proj"]
    assert t_out.dtype == torch.float32 and torch.equal(t_out, F.linear(t_in, model.condition_embedder.time_proj.weight,
                                                                         model.condition_embedder.time_proj.bias))
    h_in, h_out = seen["proj_out"]
    assert h_in.dtype == torch.float32 and torch.equal(h_out, F.linear(h_in, model.proj_out.weight, model.proj_out.bias))
    # without the hooks the same weights compute in float32 throughout: another result
    from diffusers.hooks import HookRegistry

    for module in model.modules():
        registry = getattr(module, "_diffusers_hook", None)
        for name in [n for n in (registry.hooks if registry else {}) if n.startswith("omiti2v_")]:
            HookRegistry.check_if_exists_or_initialize(module).remove_hook(name, recurse=False)
    with torch.no_grad():
        plain = model(**inputs)[0]
    assert 1e-4 < float((plain - out).abs().max()) < 0.5


def test_wan_default_precision_is_float32_weights_under_autocast_with_a_float16_clip():
    """conf/model/wan2.1.yaml's official precision; `precision.transformer=null` gives bf16 weights, no hooks."""
    baseline = get_baseline("wan2.1")
    pipe = baseline.build(baseline.settings(WAN))
    assert (pipe.transformer.dtype, pipe.image_encoder.dtype, pipe.vae.dtype) == \
        (torch.float32, torch.float16, torch.float32)
    assert "omiti2v_autocast" in pipe.transformer._diffusers_hook.hooks
    pipe = baseline.build(baseline.settings({**WAN, "precision": {"transformer": None}}))
    assert (pipe.transformer.dtype, pipe.image_encoder.dtype, pipe.vae.dtype) == \
        (torch.bfloat16, torch.float16, torch.float32)
    assert not hasattr(pipe.transformer, "_diffusers_hook") or not pipe.transformer._diffusers_hook.hooks


FRAMEPACK = {"weights": "tiny", "dtype": "bfloat16", "sizing": {"mode": "bucket", "bucket": 48},
             "teacache": {"enabled": False},
             "sampling": {"num_frames": 9, "latent_window_size": 2, "num_inference_steps": 2}}


def test_framepack_output_projection_in_float32_and_encoders_in_float16():
    baseline = get_baseline("framepack")
    pipe = baseline.build(baseline.settings(FRAMEPACK))
    assert pipe.transformer.dtype == torch.bfloat16 and pipe.transformer.proj_out.weight.dtype == torch.float32
    assert {pipe.text_encoder.dtype, pipe.text_encoder_2.dtype, pipe.image_encoder.dtype, pipe.vae.dtype} == {torch.float16}
    seen = record_io({"norm_out": pipe.transformer.norm_out, "proj_out": pipe.transformer.proj_out})
    inputs = dummy_inputs("framepack", "tiny", dtype=torch.bfloat16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = pipe.transformer(**inputs)[0]
    normed = seen["norm_out"][1]
    assert normed.dtype == torch.bfloat16 and out.dtype == torch.float32
    proj = pipe.transformer.proj_out
    assert torch.equal(seen["proj_out"][1], F.linear(normed.float(), proj.weight, proj.bias))


@pytest.mark.parametrize("name", ["wan2.1", "framepack"])
def test_the_official_precision_generates_a_video(name):
    """The whole tiny pipeline runs with the official dtypes (bf16 transformer or fp32 under autocast, fp16 parts)."""
    baseline = get_baseline(name)
    extra = {"precision": {"transformer": "float32", "image_encoder": "float16", "vae": "float32"}} if name == "wan2.1" else {}
    settings = baseline.settings({**(WAN if name == "wan2.1" else FRAMEPACK), **extra})
    pipe = baseline.build(settings)
    image, height, width = baseline.prepare_image(Image.linear_gradient("L").resize((96, 64)).convert("RGB"), settings)
    kwargs = baseline.call_kwargs(pipe, image, "a cat", height, width, settings)
    frames = pipe(**kwargs, generator=torch.Generator().manual_seed(0)).frames[0]
    assert frames.shape[1:] == (height, width, 3) and torch.isfinite(torch.as_tensor(frames)).all()
