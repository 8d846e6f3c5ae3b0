"""TeaCache hooks on a tiny FramePack pipeline: threshold 0 is bit-identical, remove() restores, the
computed/skipped pattern equals the rule evaluated step by step on the recorded modulated inputs, and ASM only
acts on computed calls."""

import numpy as np
import pytest
import torch
from PIL import Image
from torch._dynamo.utils import counters

from omiti2v.asm import ASMConfig, apply_asm
from omiti2v.asm.processors import find_attention_sites, intercept_attention
from omiti2v.cache import TeaCacheConfig, apply_teacache, teacache_handle
from omiti2v.cache.teacache import FRAMEPACK_COEFFICIENTS
from omiti2v.generate.compile import compile_regions
from omiti2v.models import get_baseline

STEPS, SECTIONS = 6, 2


@pytest.fixture(scope="module")
def tiny_framepack():
    return build_tiny_framepack()


def build_tiny_framepack():
    baseline = get_baseline("framepack")
    settings = baseline.settings({"weights": "tiny", "dtype": "float32", "sizing": {"mode": "bucket", "bucket": 48},
                                  "teacache": {"enabled": False},
                                  "sampling": {"num_frames": 1 + SECTIONS * 2 * 4, "latent_window_size": 2,
                                               "num_inference_steps": STEPS}})
    pipe = baseline.build(settings)
    image, height, width = baseline.prepare_image(Image.linear_gradient("L").convert("RGB"), settings)
    kwargs = baseline.call_kwargs(pipe, image, "a cat", height, width, settings)
    return pipe, {**kwargs, "output_type": "latent"}


def run(pipe, kwargs) -> torch.Tensor:
    with torch.no_grad():
        out = pipe(**kwargs, generator=torch.Generator("cpu").manual_seed(0)).frames
    return torch.cat([torch.as_tensor(f) for f in out], dim=2)


def test_threshold_zero_is_bit_identical_and_remove_restores(tiny_framepack):
    pipe, kwargs = tiny_framepack
    reference = run(pipe, kwargs)
    handle = apply_teacache(pipe.transformer, TeaCacheConfig(rel_l1_thresh=0.0, num_steps=STEPS))
    try:
        assert torch.equal(run(pipe, kwargs), reference)
        assert handle.stats()["skipped"] == 0 and handle.stats()["computed"] == STEPS * SECTIONS
        handle.reset()
        handle.config.rel_l1_thresh = 1e9          # skip everything the rule allows: the video changes
        cached = run(pipe, kwargs)
        assert handle.stats()["sections"] == ["C" + "S" * (STEPS - 2) + "C"] * SECTIONS
        assert not torch.allclose(cached, reference)
        with pytest.raises(ValueError, match="already installed"):
            apply_teacache(pipe.transformer, TeaCacheConfig(rel_l1_thresh=0.0, num_steps=STEPS))
    finally:
        handle.remove()
    assert teacache_handle(pipe.transformer) is None
    assert not [m for m in pipe.transformer.modules()
                if hasattr(m, "_diffusers_hook") and m._diffusers_hook.get_hook("omiti2v_teacache") is not None]
    assert torch.equal(run(pipe, kwargs), reference)


def expected_pattern(modulated: list[torch.Tensor], threshold: float, num_steps: int) -> str:
    """The official rule, call by call: first/last call of a section computes and zeroes the distance; else the
    distance grows by poly(mean|x - prev| / mean|prev|) and the call computes once it reaches the threshold."""
    poly = np.poly1d(FRAMEPACK_COEFFICIENTS)
    marks, distance = [], 0.0
    for call, x in enumerate(modulated):
        if call % num_steps in (0, num_steps - 1):
            marks.append("C")
            distance = 0.0
            continue
        prev = modulated[call - 1]
        distance += poly(float((x - prev).abs().mean() / prev.abs().mean()))
        if distance >= threshold:
            marks.append("C")
            distance = 0.0
        else:
            marks.append("S")
    return "".join(marks)


def record_modulated(pipe, kwargs, config: TeaCacheConfig | None):
    """Run the pipeline (with TeaCache when `config`); the head block's norm1 output of every call, and stats."""
    head, inputs = pipe.transformer.transformer_blocks[0], []
    handle = apply_teacache(pipe.transformer, config) if config else None
    recorder = head.register_forward_pre_hook(lambda m, args: inputs.append((args[0].clone(), args[2].clone())))
    try:
        run(pipe, kwargs)
    finally:
        recorder.remove()
        stats = handle.stats() if handle else None
        if handle:
            handle.remove()
    with torch.no_grad():
        return [head.norm1(h, emb=t)[0] for h, t in inputs], stats


def test_pattern_equals_the_rule_on_the_recorded_modulated_inputs(tiny_framepack):
    pipe, kwargs = tiny_framepack
    plain, _ = record_modulated(pipe, kwargs, None)
    poly = np.poly1d(FRAMEPACK_COEFFICIENTS)
    increments = [poly(float((b - a).abs().mean() / a.abs().mean())) for a, b in zip(plain, plain[1:], strict=False)]
    patterns = set()
    for threshold in np.linspace(1.0, 4.0, 13) * float(np.median(increments)):  # from skipping one to several
        modulated, stats = record_modulated(pipe, kwargs, TeaCacheConfig(rel_l1_thresh=threshold, num_steps=STEPS))
        pattern = "".join(stats["sections"])
        assert len(modulated) == STEPS * SECTIONS and pattern == expected_pattern(modulated, threshold, STEPS)
        assert (stats["computed"], stats["skipped"]) == (pattern.count("C"), pattern.count("S"))
        patterns.add(pattern)
    assert len(patterns) >= 3 and any("SS" in p for p in patterns) and any("CSC" in p for p in patterns)


def test_a_skipped_call_adds_the_last_computed_residual_to_its_own_input(tiny_framepack):
    pipe, kwargs = tiny_framepack
    transformer, calls = pipe.transformer, []
    grab = transformer.register_forward_pre_hook(lambda m, a, kw: calls.append(dict(kw)), with_kwargs=True)
    run(pipe, kwargs)
    grab.remove()
    first, second = calls[0], {**calls[1], "hidden_states": calls[1]["hidden_states"] + 0.1}
    stack = {}
    hooks = [transformer.transformer_blocks[0].register_forward_pre_hook(lambda m, a: stack.update(inp=a[0])),
             transformer.single_transformer_blocks[-1].register_forward_hook(lambda m, a, out: stack.update(out=out[0]))]
    with torch.no_grad():
        transformer(**first)
        residual = stack["out"] - stack["inp"]
        uncached = transformer(**second)[0]
        # The expected skipped output: the plain forward with the stack's output replaced by input + residual.
        swap = transformer.single_transformer_blocks[-1].register_forward_hook(
            lambda m, a, out: (stack["inp"] + residual, out[1]))
        expected = transformer(**second)[0]
        swap.remove()
        for hook in hooks:
            hook.remove()
        handle = apply_teacache(transformer, TeaCacheConfig(rel_l1_thresh=1e9, num_steps=3))
        try:
            transformer(**first)
            cached = transformer(**second)[0]
            assert handle.stats()["sections"] == ["CS"]
        finally:
            handle.remove()
    torch.testing.assert_close(cached, expected, rtol=1e-6, atol=1e-6)
    assert not torch.allclose(cached, uncached, atol=1e-4)


def test_asm_acts_only_on_computed_calls(tiny_framepack):
    pipe, kwargs = tiny_framepack
    kwargs = {**kwargs, "num_frames": 5}   # one section ((window - 1) * 4 + 1 frames): distinct timesteps
    config = ASMConfig.preset("framepack", blocks="all", window="all")
    asm = apply_asm(pipe, config)
    teacache = apply_teacache(pipe.transformer, TeaCacheConfig(rel_l1_thresh=1e9, num_steps=STEPS))
    events, timesteps, multipliers = [], [], {}
    stamp = pipe.transformer.register_forward_pre_hook(lambda m, a, kw: timesteps.append(float(kw["timestep"].max())),
                                                       with_kwargs=True)
    # the logit multiplier of every hooked attention as ASM set it for this call, read after the call
    snapshot = pipe.transformer.register_forward_hook(
        lambda m, a, out: multipliers.__setitem__(timesteps[-1], asm.logit_multipliers()))
    recorder = intercept_attention(find_attention_sites(pipe.transformer),
                                   lambda call: events.append((timesteps[-1], call.module_name, call.site)))
    try:
        run(pipe, kwargs)
    finally:
        recorder.remove()
        snapshot.remove()
        stamp.remove()
        teacache.remove()
        asm.remove()
    pattern = teacache.stats()["sections"][0]
    assert pattern == "C" + "S" * (STEPS - 2) + "C" and len(timesteps) == STEPS
    computed = {t for t, mark in zip(timesteps, pattern, strict=True) if mark == "C"}
    assert {t for t, _, _ in events} == computed          # no attention at all on skipped calls
    single = pipe.transformer.config.num_single_layers
    scaled = [(t, site, multipliers[t].get((name, site), 1.0)) for t, name, site in events]
    scaled = [(t, site, g) for t, site, g in scaled if g != 1.0]
    assert len(scaled) == single * len(computed)
    assert {(site, round(g, 6)) for _, site, g in scaled} == {("single", round(config.gamma_k, 6))}


def test_teacache_and_asm_under_regional_compile_equal_eager_without_new_graphs():
    pipe, kwargs = build_tiny_framepack()  # its own: compiling changes the transformer in place
    asm = apply_asm(pipe, ASMConfig.preset("framepack", blocks="all"))
    teacache = apply_teacache(pipe.transformer, TeaCacheConfig(rel_l1_thresh=1e9, num_steps=STEPS))
    try:
        eager, pattern = run(pipe, kwargs), teacache.stats()["sections"]
        assert pattern == ["C" + "S" * (STEPS - 2) + "C"] * SECTIONS  # computed and skipped calls, in and out
        teacache.reset()
        torch._dynamo.reset()
        compile_regions(pipe.transformer, fullgraph=True, backend="aot_eager")
        counters.clear()
        graphs = []
        snapshot = pipe.transformer.register_forward_hook(
            lambda m, a, out: graphs.append(counters["stats"]["unique_graphs"]))
        compiled = run(pipe, kwargs)
        snapshot.remove()
        assert teacache.stats()["sections"] == pattern
        assert graphs[0] >= 1 and set(graphs) == {graphs[0]}  # compiled once, no new graph over the steps
        torch.testing.assert_close(compiled, eager, rtol=1e-5, atol=1e-5)
    finally:
        teacache.remove()
        asm.remove()
