"""Guidance methods on a tiny Wan: each equals a plain restatement of its paper's equation, ALG hands back the
original image at the documented step, the adapter's CFG is the pipeline's own, and the diffusers behaviour the
adapter works around is watched."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from omiti2v.guidance import GuidanceConfig, apply_guidance
from omiti2v.guidance.adapter import HOOK_NAME
from omiti2v.models.architectures import build_transformer, dummy_inputs

NEGATIVE_SEED = 7


@pytest.fixture(scope="module")
def wan():
    return build_transformer("wan", seed=0)


@pytest.fixture(scope="module")
def inputs():
    generator = torch.Generator().manual_seed(1)
    found = dummy_inputs("wan", num_frames=2, height=8, width=8, text_tokens=16, generator=generator)
    negative = torch.randn(found["encoder_hidden_states"].shape, generator=torch.Generator().manual_seed(NEGATIVE_SEED))
    return found, negative


def raw(model, inputs, **changes) -> torch.Tensor:
    with torch.no_grad():
        return model(**{**inputs, **changes})[0]


def guided(model, inputs, negative, config: GuidanceConfig, step: int, steps: int) -> tuple[torch.Tensor, int]:
    """The adapter's prediction at `step` of `steps` and the forwards it ran."""
    with apply_guidance(model, config) as handle, torch.no_grad():
        handle.start({"encoder_hidden_states": negative}, steps, step=step)
        return model(**inputs)[0], handle.forwards


# ---- plain restatements of the papers' equations ---------------------------------------------------------------

def block_skipped(model, inputs, block: int) -> torch.Tensor:
    """STG-R's perturbed model: block `block` passes its input through."""
    handle = model.blocks[block].register_forward_hook(lambda module, args, kwargs, out: kwargs.get("hidden_states", args[0] if args else None),
                                                       with_kwargs=True)
    try:
        return raw(model, inputs)
    finally:
        handle.remove()


def identity_attention(model, inputs, block: int) -> torch.Tensor:
    """PAG's perturbed model: the self-attention map of block `block` is the identity, so each token's attention
    output is its own value vector, then the output projection."""
    attention = model.blocks[block].attn1

    def value_only(module, args, kwargs, output):
        hidden = kwargs.get("hidden_states", args[0] if args else None)
        return module.to_out[0](module.to_v(hidden))

    handle = attention.register_forward_hook(value_only, with_kwargs=True)
    try:
        return raw(model, inputs)
    finally:
        handle.remove()


def down_up(condition: torch.Tensor, factor: float) -> torch.Tensor:
    """ALG's filter, frame by frame: bilinear (antialiased) to round(factor x size), and back."""
    frames = []
    for f in range(condition.shape[2]):
        plane = condition[:, :, f].float()
        h, w = plane.shape[-2:]
        small = F.interpolate(plane, size=(max(1, round(h * factor)), max(1, round(w * factor))), mode="bilinear",
                              align_corners=False, antialias=True)
        frames.append(F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False, antialias=True))
    return torch.stack(frames, dim=2).to(condition.dtype)


def restated(method: str, model, inputs, negative, w: float, s: float, step: int, **settings) -> torch.Tensor:
    c = raw(model, inputs)
    u = raw(model, inputs, encoder_hidden_states=negative)
    if method == "cfg":
        return u + w * (c - u)
    if method == "cfg-zero-star":
        if step < settings["zero_init_steps"]:
            return torch.zeros_like(c)
        alpha = (c * u).flatten(1).sum(1) / ((u * u).flatten(1).sum(1) + 1e-8)
        alpha = alpha.view(-1, *([1] * (c.ndim - 1)))
        return alpha * u + w * (c - alpha * u)
    if method == "apg":
        d, flat_c = (c - u).double().flatten(1), c.double().flatten(1)
        unit = flat_c / flat_c.norm(dim=1, keepdim=True)
        parallel = (d * unit).sum(1, keepdim=True) * unit
        update = (d - parallel) + settings["eta"] * parallel
        return (c.double() + (w - 1) * update.view(c.shape)).to(c.dtype)
    if method in ("stg", "pag"):
        perturb = block_skipped if method == "stg" else identity_attention
        p = perturb(model, inputs, settings["blocks"][0])
        return c + (w - 1) * (c - u) + s * (c - p)
    if method == "alg":
        hidden = inputs["hidden_states"]
        low = torch.cat([hidden[:, :16], down_up(hidden[:, 16:], settings["resize_factor"])], dim=1)
        c_low = raw(model, inputs, hidden_states=low)
        u_low = raw(model, inputs, hidden_states=low, encoder_hidden_states=negative)
        return u + w * (c_low - u_low)
    raise ValueError(method)


CASES = [
    # (method, strength, settings, step of 10, forwards at that step)
    ("cfg", 4.0, {}, 3, 2),
    ("cfg-zero-star", 4.0, {"zero_init_steps": 1}, 3, 2),
    ("cfg-zero-star", 4.0, {"zero_init_steps": 1}, 0, 2),
    ("apg", 4.0, {"eta": 0.3}, 3, 2),
    ("stg", 1.5, {"blocks": (1,), "cfg_scale": 1.0}, 3, 2),
    ("stg", 1.5, {"blocks": (1,), "cfg_scale": 3.0}, 3, 3),
    ("pag", 1.5, {"blocks": (1,), "cfg_scale": 1.0}, 3, 2),
    ("pag", 1.5, {"blocks": (2,), "cfg_scale": 3.0}, 3, 3),
    ("alg", 0.2, {"resize_factor": 0.4, "cfg_scale": 5.0}, 1, 3),
]


@pytest.mark.parametrize(("method", "strength", "settings", "step", "forwards"), CASES,
                         ids=[f"{c[0]}-{c[2].get('cfg_scale', '')}-step{c[3]}" for c in CASES])
def test_each_method_equals_its_papers_equation(wan, inputs, method, strength, settings, step, forwards):
    found, negative = inputs
    config = GuidanceConfig(method, strength, **settings).resolved(1.0)
    prediction, ran = guided(wan, found, negative, config, step, 10)
    expected = restated(method, wan, found, negative, config.guidance_scale, strength, step,
                        **{**settings, "blocks": config.blocks, "resize_factor": config.resize_factor})
    assert ran == forwards
    assert torch.allclose(prediction, expected, rtol=1e-5, atol=1e-5), float((prediction - expected).abs().max())
    assert float((prediction - raw(wan, found)).abs().max()) > 1e-3  # the method changed the prediction


def test_perturbed_passes_really_differ_and_hooks_come_off(wan, inputs):
    found, _ = inputs
    c = raw(wan, found)
    assert float((block_skipped(wan, found, 1) - c).abs().max()) > 1e-3
    assert float((identity_attention(wan, found, 1) - c).abs().max()) > 1e-3
    for method in ("stg", "pag"):
        config = GuidanceConfig(method, 1.0, blocks=(1,)).resolved(1.0)
        with apply_guidance(wan, config) as handle:
            handle.start(None, 4, step=2)
            with torch.no_grad():
                wan(**found)
        assert torch.equal(raw(wan, found), c)  # the layer-skip and guidance hooks are gone
    assert HOOK_NAME not in getattr(getattr(wan, "_diffusers_hook", None), "hooks", {})


def test_alg_switches_back_to_the_original_image_at_the_documented_step(wan, inputs):
    """strength f over N steps: steps i with i / (N - 1) <= f see the low-passed image latents (3 passes), the
    first step after, floor(f (N - 1)) + 1, and all later ones the original (2 passes)."""
    found, negative = inputs
    config = GuidanceConfig("alg", 0.2, cfg_scale=5.0).resolved(1.0)
    steps, switch = 10, math.floor(0.2 * 9) + 1
    seen: list[torch.Tensor] = []
    hook = wan.patch_embedding.register_forward_pre_hook(lambda module, args: seen.append(args[0][:, 16:].clone()))
    original = found["hidden_states"][:, 16:]
    low = down_up(original, 0.4)
    per_step = []
    try:
        with apply_guidance(wan, config) as handle, torch.no_grad():
            handle.start({"encoder_hidden_states": negative}, steps)
            for _ in range(steps):
                before = len(seen)
                wan(**found)
                per_step.append([("low" if torch.allclose(x, low) else "original" if torch.equal(x, original) else "?")
                                 for x in seen[before:]])
    finally:
        hook.remove()
    assert switch == 2 and not torch.allclose(low, original)
    assert per_step[:switch] == [["low", "low", "original"]] * switch
    assert per_step[switch:] == [["original", "original"]] * (steps - switch)
    assert [config.low_pass_active(i, steps) for i in range(steps)] == [i < switch for i in range(steps)]


def test_forwards_per_step_follow_the_guiders_schedules():
    from omiti2v.guidance import forwards_per_step

    def mean(method, strength, **settings):
        return forwards_per_step(GuidanceConfig(method, strength, **settings).resolved(1.0), 40)

    assert mean("cfg", 5.0) == mean("cfg-zero-star", 5.0) == mean("apg", 5.0) == 2.0
    assert mean("cfg", 1.0) == 1.0
    assert mean("stg", 1.0) == (1 + 2 * 39) / 40  # diffusers starts the perturbed pass at step 1
    assert mean("stg", 1.0, cfg_scale=5.0) == (2 + 3 * 39) / 40
    assert mean("alg", 0.2, cfg_scale=5.0) == (3 * 8 + 2 * 32) / 40  # official: steps 0..7 of 40 (i / 39 <= 0.2)
    assert mean("alg", 0.2) == (3 * 8 + 1 * 32) / 40  # CFG 1: one forward after the low-pass steps


def test_unprepared_or_overrun_calls_fail_loudly(wan, inputs):
    found, negative = inputs
    with apply_guidance(wan, GuidanceConfig("cfg", 3.0).resolved(1.0)) as handle, torch.no_grad():
        with pytest.raises(RuntimeError, match="not prepared"):
            wan(**found)
        with pytest.raises(ValueError, match="unconditional pass"):
            handle.start(None, 2)
        handle.start({"encoder_hidden_states": negative}, 1)
        wan(**found)
        with pytest.raises(RuntimeError, match="more transformer calls than the 1 steps"):
            wan(**found)


def test_config_validation_names_the_knob():
    with pytest.raises(ValueError, match=r"the CFG scale w of cfg must be a number >= 1"):
        GuidanceConfig("cfg", 0.5)
    with pytest.raises(ValueError, match=r"low-pass step fraction of alg must be a number in \[0, 1\]"):
        GuidanceConfig("alg", 1.5)
    with pytest.raises(ValueError, match="method 'foo' is not one of"):
        GuidanceConfig("foo", 1.0)
    assert GuidanceConfig("stg", 1.0).resolved(5.0).guidance_scale == 5.0  # stg keeps the model's own CFG
    assert not GuidanceConfig("stg", 1.0).resolved(1.0).needs_unconditional
    assert GuidanceConfig("alg", 0.2, cfg_scale=1.0).resolved(1.0).needs_unconditional


# ---- the diffusers behaviour the adapter relies on or works around -----------------------------------------------

def test_diffusers_skip_layer_guider_still_mishandles_cfg_off():
    """With CFG off, diffusers 0.42's SkipLayerGuidance gives the perturbed batch the unconditional inputs and
    installs no skip hooks, which is why `omiti2v.guidance.methods` plans the passes itself. When this fails,
    diffusers changed: the adapter could go back to the guiders' own `prepare_inputs`/`prepare_models`."""
    from diffusers.guiders import SkipLayerGuidance

    guider = SkipLayerGuidance(guidance_scale=1.0, skip_layer_guidance_scale=2.0, skip_layer_guidance_layers=[0],
                               skip_layer_guidance_start=0.0, skip_layer_guidance_stop=1.0)
    guider.set_state(step=3, num_inference_steps=10, timestep=torch.tensor(500))
    batches = guider.prepare_inputs({"encoder_hidden_states": (torch.zeros(1), torch.ones(1))})
    skip = next(b for b in batches if b.__guidance_identifier__ == "pred_cond_skip")
    assert torch.equal(skip.encoder_hidden_states, torch.ones(1))  # the unconditional inputs
    model = build_transformer("wan", seed=0)
    for _ in batches:  # the protocol of the modular pipelines: prepare_models before each batch's forward
        guider.prepare_models(model)
        assert not hasattr(model.blocks[0], "_diffusers_hook")  # no skip hook, for the perturbed batch either
        guider.cleanup_models(model)


@pytest.mark.slow
def test_guidance_under_regional_compile_keeps_one_block_graph():
    """cfg and alg only change the inputs of whole forwards: with the blocks compiled (`generation.compile=regional`)
    a schedule of steps adds no graph and the predictions stay the eager ones."""
    from torch._dynamo.utils import counters

    from omiti2v.generate.compile import compile_regions

    model = build_transformer("wan", seed=0)
    found = dummy_inputs("wan", num_frames=2, height=8, width=8, text_tokens=16, generator=torch.Generator().manual_seed(1))
    negative = torch.randn(found["encoder_hidden_states"].shape, generator=torch.Generator().manual_seed(NEGATIVE_SEED))
    configs = [GuidanceConfig("cfg", 4.0).resolved(1.0), GuidanceConfig("alg", 0.3, cfg_scale=4.0).resolved(1.0)]

    def schedule(config):
        with apply_guidance(model, config) as handle, torch.no_grad():
            handle.start({"encoder_hidden_states": negative}, 6)
            return [model(**{**found, "timestep": torch.full((1,), 1000.0 - 150 * i)})[0] for i in range(6)]

    eager = [schedule(config) for config in configs]
    compile_regions(model, fullgraph=True, backend="aot_eager")
    counters.clear()
    compiled = [schedule(config) for config in configs]
    assert counters["stats"]["unique_graphs"] == 1
    for ours, reference in zip(compiled, eager, strict=True):
        assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(ours, reference, strict=True))
