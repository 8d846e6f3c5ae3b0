"""Entropy estimate, energy-based gamma, key/image blur and the entropy probe."""

import math

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFilter

from omiti2v.asm import ASMConfig, EntropyProbe, apply_asm, blur_input_image, effective_gamma
from omiti2v.asm.blur import blur_tokens
from omiti2v.asm.energy import EnergyModulation
from omiti2v.asm.entropy import attention_entropy
from omiti2v.asm.processors import STRENGTH, AttentionCall, AttentionSite
from omiti2v.models.architectures import build_transformer, dummy_inputs


def _logit_entropy(logits, alpha):
    """Entropy of softmax(alpha * z) through attention_entropy: q = [1], k_j = [z_j], scale alpha."""
    z = torch.tensor(logits, dtype=torch.float64)
    query = torch.ones(1, 1, 1, 1, dtype=torch.float64)
    key = z.view(1, -1, 1, 1)
    entropy, _ = attention_entropy(query, key, alpha, layout="BSHD")
    return float(entropy)


@settings(max_examples=60, deadline=None)
@given(logits=st.lists(st.floats(-5, 5), min_size=2, max_size=12).filter(lambda z: max(z) - min(z) > 1e-2),
       alphas=st.lists(st.floats(0.05, 4.0), min_size=2, max_size=6, unique=True).filter(
           lambda a: float(np.diff(sorted(a)).min()) > 1e-3))
@example(logits=[3.0, 3.0, -4.0], alphas=[3.0, 4.0])  # two tied maxima: both entropies are log 2 in float32
def test_entropy_decreases_as_alpha_grows(logits, alphas):
    entropies = [_logit_entropy(logits, a) for a in sorted(alphas)]
    for lower, higher in zip(entropies, entropies[1:], strict=False):
        # strictly, until the attention has collapsed onto its tied maxima (entropy log k, k >= 1): then the
        # change is below the float32 resolution of the reduction
        collapsed = abs(lower - higher) <= 1e-6 * max(1.0, lower)
        assert higher < lower or collapsed, (lower, higher)


@pytest.mark.parametrize("max_queries", [None, 5])
def test_chunked_entropy_equals_full_matrix(max_queries):
    gen = torch.Generator().manual_seed(0)
    q, k = torch.randn(2, 13, 3, 8, generator=gen), torch.randn(2, 17, 3, 8, generator=gen)
    mask = torch.ones(2, 1, 1, 17, dtype=torch.bool)
    mask[1, ..., 12:] = False
    entropy, log_count = attention_entropy(q, k, 0.4, mask, "BSHD", max_queries=max_queries, chunk_elements=20)
    logits = torch.einsum("bqhd,bkhd->bhqk", q, k) * 0.4
    probs = torch.softmax(logits.masked_fill(~mask, -math.inf), dim=-1)
    full = -(probs * probs.clamp_min(1e-30).log()).sum(-1)
    rows = torch.linspace(0, 12, max_queries).round().long() if max_queries else torch.arange(13)
    torch.testing.assert_close(entropy, full[:, :, rows], rtol=1e-5, atol=1e-6)
    assert torch.allclose(log_count[1], torch.tensor(12.0).log()) and torch.allclose(log_count[0],
                                                                                      torch.tensor(17.0).log())
    # same in SDPA layout
    bhsd, _ = attention_entropy(q.transpose(1, 2), k.transpose(1, 2), 0.4, mask, "BHSD", max_queries=max_queries)
    torch.testing.assert_close(bhsd, entropy)


def test_effective_gamma_bounds_and_monotonicity():
    h = torch.linspace(0, 1, 11)
    gamma = effective_gamma(h, 1.35**2)
    assert torch.all(gamma >= 1) and torch.all(gamma[1:] > gamma[:-1])
    assert float(gamma[0]) == 1.0 and float(gamma[-1]) == pytest.approx(1.35**2)
    assert float(effective_gamma(float("nan"), 1.35)) == 1.0


def _energy_multiplier(query, key, strength=1.35):
    """The logit factor the energy handler applies to one call whose strength is `strength`."""
    config = ASMConfig.preset("framepack", strategy="energy", window="all")
    module = torch.nn.Module()
    module.register_buffer(STRENGTH, torch.tensor([strength]))
    module._asm_idle = [False]
    call = AttentionCall(AttentionSite("m", module, 0, ("single",)), module, 0, query, key, None, "BSHD",
                         1 / math.sqrt(query.shape[-1]))
    handler = EnergyModulation(config)
    gamma = float(handler.gamma(call))
    handler(call)
    # the logits actually used are gamma_eff times the original ones
    torch.testing.assert_close(torch.einsum("bqhd,bkhd->bhqk", call.query, call.key),
                               gamma * torch.einsum("bqhd,bkhd->bhqk", query, key), rtol=1e-5, atol=1e-5)
    return gamma


def test_energy_is_stronger_for_diffuse_attention_and_finite_for_equal_logits():
    gen = torch.Generator().manual_seed(0)
    query = torch.randn(1, 32, 2, 16, generator=gen)
    key = torch.randn(1, 64, 2, 16, generator=gen)
    diffuse = _energy_multiplier(query * 0.1, key)
    focused = _energy_multiplier(query * 10, key)
    assert 1.0 <= focused < diffuse <= 1.35
    equal = _energy_multiplier(torch.zeros_like(query), key)  # all logits equal: uniform attention
    assert math.isfinite(equal) and equal == pytest.approx(1.35)
    assert _energy_multiplier(query, key[:, :1]) == 1.0  # one key: entropy 0, nothing to sharpen
    assert _energy_multiplier(query * 0.1, key, strength=1.0) == 1.0  # outside the window: the identity


def test_energy_strategy_on_a_transformer_lies_between_none_and_scalar():
    model = build_transformer("framepack", seed=0)
    inputs = dummy_inputs("framepack", height=16, width=16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        base = model(**inputs)[0]
        with apply_asm(model, ASMConfig.preset("framepack", strategy="energy")):
            energy = model(**inputs)[0]
        with apply_asm(model, ASMConfig.preset("framepack")):
            scalar = model(**inputs)[0]
    assert 0 < (energy - base).abs().max() < (scalar - base).abs().max()


def test_blur_tokens_kernel_and_constant():
    x = torch.zeros(1, 5, 1, 1)
    x[0, 2] = 1.0
    blurred = blur_tokens(x, dim=1).flatten()
    w = math.exp(-2.0)  # offsets +-1 at sigma 0.5: exp(-1 / (2 * 0.25))
    torch.testing.assert_close(blurred, torch.tensor([0, w, 1, w, 0]) / (1 + 2 * w))
    constant = torch.full((1, 6, 2, 3), 0.7)
    torch.testing.assert_close(blur_tokens(constant, dim=1), constant)


def test_blur_input_image_matches_official_recipe():
    rng = np.random.RandomState(0)
    big = Image.fromarray(rng.randint(0, 255, (600, 900, 3), dtype=np.uint8))
    out = blur_input_image(big)
    assert out.size == (768, 512)
    expected = big.resize((768, 512), Image.LANCZOS).filter(ImageFilter.GaussianBlur(1))
    assert np.array_equal(np.asarray(out), np.asarray(expected))
    small = Image.fromarray(rng.randint(0, 255, (400, 900, 3), dtype=np.uint8))  # one side <= 512: no resize
    assert np.array_equal(np.asarray(blur_input_image(small)), np.asarray(small.filter(ImageFilter.GaussianBlur(1))))


@pytest.mark.parametrize("family", ["wan", "hunyuan", "easyanimate"])
def test_probe_collects_entropy_per_block_and_step(family):
    model = build_transformer(family, seed=0)
    inputs = dummy_inputs(family, generator=torch.Generator().manual_seed(1))
    with torch.no_grad(), EntropyProbe(model, max_queries=None) as probe:
        model(**inputs)
        model(**{**inputs, "timestep": inputs["timestep"] * 0 + 500.0})
        model(**{**inputs, "timestep": inputs["timestep"] * 0 + 500.0})  # CFG-like repeat: averaged
    rows = probe.records()
    steps = {row["timestep"] for row in rows}
    assert steps == {999.0, 500.0}
    assert all(row["calls"] == (1 if row["timestep"] == 999.0 else 2) for row in rows)
    assert all(0 <= row["normalized_entropy"] <= 1 and row["entropy"] > 0 for row in rows)
    assert len(probe.per_block()) == len(rows) // 2
    # removed on exit; a modulated run has lower entropy at the modulated sites
    assert not any("Intercepting" in type(m.processor).__name__ for m in model.modules() if hasattr(m, "processor"))
    preset = {"wan": "wan2.1", "hunyuan": "hunyuan-i2v", "easyanimate": "easyanimate"}[family]
    with torch.no_grad(), apply_asm(model, ASMConfig.preset(preset, blocks="all")) as handle, \
            EntropyProbe(model, max_queries=None) as modulated:
        model(**inputs)
    site = handle.config.sites[-1]
    before, after = probe.entropy(), modulated.entropy()
    assert all(after[(site, b, 999.0)] < before[(site, b, 999.0)] for (s, b, _) in after if s == site)
