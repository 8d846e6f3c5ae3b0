"""Calibration (foreground-ratio block selection) and attention analysis on tiny models.

Numbers tested: the chunked statistics against the full attention matrix, token layouts against which keys a
perturbed input image actually changes, determinism, the block list's form and its use by schedule=calibrated,
entropy falling as gamma grows.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from hydra import compose, initialize_config_dir
from PIL import Image

from omiti2v.asm import ASMConfig, EntropyProbe, apply_asm
from omiti2v.asm.entropy import attention_entropy
from omiti2v.asm.processors import find_attention_sites, intercept_attention
from omiti2v.asm.schedule import load_calibrated_blocks, resolve_schedule
from omiti2v.calibrate.calibration import CalibrationConfig, run_calibration, select_blocks
from omiti2v.calibrate.layout import GeometryTracker, region_for
from omiti2v.calibrate.probe import ForegroundProbe
from omiti2v.calibrate.saliency import foreground_mask, grid_coverage
from omiti2v.calibrate.stats import foreground_lift, foreground_share, select_queries
from omiti2v.models.architectures import build_transformer, dummy_inputs

CONF = Path(__file__).resolve().parents[1] / "conf"


def full_attention(q, k, scale, mask=None):
    """Reference: the whole (B, H, Nq, Nk) softmax, q/k in BHSD."""
    logits = torch.matmul(q.double(), k.double().transpose(-1, -2)) * scale
    if mask is not None:
        logits = logits.masked_fill(~mask, -math.inf) if mask.dtype == torch.bool else logits + mask.double()
    return torch.softmax(logits, dim=-1).nan_to_num(0.0)


@pytest.mark.parametrize("layout", ["BSHD", "BHSD"])
@pytest.mark.parametrize("mask_kind", [None, "bool", "additive"])
def test_chunked_foreground_share_and_entropy_equal_the_full_matrix(layout, mask_kind):
    gen = torch.Generator().manual_seed(1)
    b, h, nq, nk, d = 2, 3, 37, 29, 8
    q, k = torch.randn(b, h, nq, d, generator=gen), torch.randn(b, h, nk, d, generator=gen) * 2
    mask = None
    if mask_kind:
        allowed = torch.rand(b, 1, nq, nk, generator=gen) > 0.3
        allowed[..., 5] = True  # every row attends somewhere
        mask = allowed if mask_kind == "bool" else torch.zeros(b, 1, nq, nk).masked_fill(~allowed, -math.inf)
    weights = torch.rand(12, generator=gen)
    scale = 0.4
    probs = full_attention(q, k, scale, mask)
    index = select_queries(nq, (3, nq), 11, torch.device("cpu"))
    qi, ki = (q.transpose(1, 2), k.transpose(1, 2)) if layout == "BSHD" else (q, k)
    fg, image = foreground_share(qi, ki, scale, (7, 19), weights, index, mask, layout, chunk_elements=50)
    region = probs[:, :, index][..., 7:19]
    torch.testing.assert_close(image.double(), region.sum(-1), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(fg.double(), region @ weights.double(), rtol=1e-5, atol=1e-6)
    lift = foreground_lift(fg, image, weights)
    expected = (region @ weights.double()) / region.sum(-1) / weights.double().mean()
    torch.testing.assert_close(lift.double(), expected, rtol=1e-5, atol=1e-6)
    # the ASM library's chunked entropy, all queries, against -sum p log p of the full matrix
    entropy, _ = attention_entropy(qi, ki, scale, mask, layout, max_queries=None, chunk_elements=50)
    torch.testing.assert_close(entropy.double(), torch.special.entr(probs).sum(-1), rtol=1e-5, atol=1e-5)


def test_probe_equals_full_matrix_on_a_tiny_transformer():
    model = build_transformer("wan")
    inputs = dummy_inputs("wan", num_frames=3, height=8, width=8, generator=torch.Generator().manual_seed(0))
    mask = np.zeros((64, 64), bool)
    mask[8:40, 16:56] = True
    captured = {}
    site = next(s for s in find_attention_sites(model) if s.block == 1 and "cross_image" in s.sites)

    def keep(call):
        if call.site == "cross_image":
            captured.update(q=call.query.transpose(1, 2), k=call.key.transpose(1, 2), scale=call.scale)

    handle = intercept_attention([site], keep)
    with ForegroundProbe(model, blocks=[1], max_queries=None) as probe:
        probe.set_sample("s", mask)
        model(**inputs)
    handle.remove()
    (row,) = probe.records()
    weights = grid_coverage(mask, (16, 16), square_crop=True).double()
    probs = full_attention(captured["q"], captured["k"], captured["scale"])[:, :, 16:, 1:]  # frames 1.., patches
    share = (probs @ weights) / probs.sum(-1)
    assert row["foreground_area"] == pytest.approx(float(weights.mean()))
    assert row["foreground_share"] == pytest.approx(float(share.mean()), rel=1e-5)
    assert row["foreground_lift"] == pytest.approx(float(share.mean() / weights.mean()), rel=1e-5)
    assert row["image_mass"] == pytest.approx(float(probs.sum(-1).mean()), rel=1e-5)


def _changed_keys(model, site_name, inputs, perturbed):
    """Key positions of the first `site_name` attention call (block 0) that differ between two inputs."""
    sites = [s for s in find_attention_sites(model) if s.block == 0 and site_name in s.sites]
    keys = []

    def keep(call):
        if call.site == site_name:
            keys.append(call.key if call.layout == "BSHD" else call.key.transpose(1, 2))

    tracker = GeometryTracker(model)
    handle = intercept_attention(sites, keep)
    with torch.no_grad():
        model(**inputs)
        geometry, n_queries = tracker.geometry, keys[0].shape[1]
        model(**perturbed)
    handle.remove()
    tracker.remove()
    changed = (keys[0] - keys[1]).abs().amax(dim=(0, 2, 3)) > 1e-6
    region = region_for(tracker.family, site_name, geometry, n_queries, keys[0].shape[1])
    return torch.nonzero(changed).flatten().tolist(), region


@pytest.mark.parametrize("family,site,tensor", [
    ("wan", "self", "hidden_states"), ("skyreels-df", "self", "hidden_states"),
    ("hunyuan", "dual", "hidden_states"), ("framepack", "dual", "latents_clean"),
    ("easyanimate", "joint", "hidden_states"),
])
def test_image_token_ranges_are_where_the_input_image_enters(family, site, tensor):
    """Perturbing latent frame 0 (FramePack: the first clean latent) changes exactly the region's key range."""
    model = build_transformer(family)
    inputs = dummy_inputs(family, num_frames=3, height=8, width=8, generator=torch.Generator().manual_seed(0))
    perturbed = dict(inputs)
    perturbed[tensor] = inputs[tensor].clone()
    perturbed[tensor][:, :, 0] += 1.0
    if family == "easyanimate":
        perturbed["inpaint_latents"] = inputs["inpaint_latents"].clone()
        perturbed["inpaint_latents"][:, :, 0] += 1.0
    changed, region = _changed_keys(model, site, inputs, perturbed)
    assert changed == list(range(*region.keys))
    if family == "framepack":  # the noisy latents are the scored queries
        noisy = dict(inputs, hidden_states=inputs["hidden_states"] + 1.0)
        changed, region = _changed_keys(model, site, inputs, noisy)
        assert changed == list(range(*region.queries))


def test_select_blocks_rules():
    scores = {0: 1.5, 1: 0.9, 2: 1.2, 3: float("nan"), 4: 1.2, 5: 2.0}
    assert select_blocks(scores, 6, threshold=1.2) == [0, 2, 4, 5]
    assert select_blocks(scores, 6, top_k=3) == [0, 2, 5]  # tie 2 vs 4: the lower index
    assert select_blocks(scores, 6, top_fraction=0.5) == [0, 2, 5]
    assert select_blocks(scores, 6, top_k=10) == [0, 1, 2, 4, 5]  # NaN never selected
    with pytest.raises(ValueError, match="threshold"):
        select_blocks(scores, 6, threshold=3.0)
    with pytest.raises(ValueError, match="finite"):
        select_blocks({0: float("nan")}, 1)


@pytest.fixture(scope="module")
def tiny_pipeline():
    from omiti2v.data import load_benchmark
    from omiti2v.models import get_baseline

    baseline = get_baseline("wan2.1-tiny")
    settings = baseline.settings({"name": "wan2.1-tiny", "weights": "tiny", "dtype": "float32",
                                  "sizing": {"mode": "max_area", "max_area": 2560, "multiple": 16},
                                  "sampling": {"num_frames": 5, "num_inference_steps": 2, "guidance_scale": 5.0}})
    pipe = baseline.build(settings, "cpu")
    pipe.set_progress_bar_config(disable=True)
    return pipe, baseline, settings, list(load_benchmark("mini"))


def _forward_counter(pipe):
    calls = []
    handle = pipe.transformer.register_forward_pre_hook(lambda *_: calls.append(1))
    return calls, handle


def test_calibration_is_deterministic_and_usable_as_schedule_calibrated(tiny_pipeline, tmp_path):
    pipe, baseline, settings, samples = tiny_pipeline
    config = CalibrationConfig(samples=2, steps=2, seed=3, top_k=2)
    out = tmp_path / "calibration" / "wan2.1-tiny"
    first = run_calibration(pipe, baseline, settings, samples, config, out)
    second = run_calibration(pipe, baseline, settings, samples, config)
    assert first.records == [{**r, "measurement": first.records[0]["measurement"]} for r in second.records]
    assert first.blocks == second.blocks and first.block_scores == second.block_scores
    assert len(first.samples) == 2 and first.site == "cross_image" and first.num_blocks == 3
    assert {r["timestep"] for r in first.records} == {999.0, 749.0}  # the 2 analysed steps (Wan's int64 grid)
    assert all(r["calls"] == 2 for r in first.records)  # CFG: conditional + unconditional pass
    assert all(0 < r["image_mass"] <= 1 and r["foreground_lift"] > 0 for r in first.records)
    ranked = sorted(first.block_scores, key=lambda b: -first.block_scores[b])
    assert first.blocks == sorted(ranked[:2])

    document = yaml.safe_load((out / "blocks.yaml").read_text())
    assert document["blocks"] == first.blocks and document["num_blocks"] == 3 and document["site"] == "cross_image"
    assert document["blocks"] == sorted(set(document["blocks"])) and all(0 <= b < 3 for b in document["blocks"])
    with Image.open(out / "heatmap.png") as heatmap:
        assert heatmap.width > 100 and heatmap.height > 100

    # resuming: samples already scored with the same measurement settings are not run again
    calls, handle = _forward_counter(pipe)
    resumed = run_calibration(pipe, baseline, settings, samples, config, out)
    handle.remove()
    assert calls == [] and resumed.blocks == first.blocks

    # schedule=calibrated composes, resolves to this list, and ASM modulates exactly these blocks
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=["model=wan2.1-tiny", "schedule=calibrated", f"results_root={tmp_path}"])
    assert resolve_schedule(cfg.schedule, cfg.model.name)["blocks"] == first.blocks
    asm = ASMConfig.from_hydra(cfg.model.asm_preset, {"strategy": "scalar"}, cfg.schedule, cfg.model.name)
    assert asm.blocks == tuple(first.blocks) and asm.window == "early"
    with apply_asm(pipe, asm) as handle:
        assert sorted({int(n.split(".")[1]) for n in handle.module_names}) == first.blocks


def test_resolve_schedule_passes_others_through_and_rejects_bad_files(tmp_path):
    assert resolve_schedule({"name": "paper", "blocks": "preset", "window": "early"})["blocks"] == "preset"
    with pytest.raises(FileNotFoundError, match="omiti2v calibrate --model wan2.1"):
        resolve_schedule({"blocks": "calibrated", "calibration_file": str(tmp_path / "none.yaml")}, "wan2.1")
    bad = tmp_path / "blocks.yaml"
    for document, message in [({"blocks": [3, 1]}, "sorted"), ({"blocks": [0, 5], "num_blocks": 4}, "num_blocks"),
                              ({"scores": {}}, "'blocks' is missing"), ({"blocks": ["a"]}, "integers"),
                              ({"blocks": [1], "model": "framepack"}, "calibrated for model")]:
        bad.write_text(yaml.safe_dump(document))
        with pytest.raises(ValueError, match=message):
            load_calibrated_blocks(bad, "wan2.1")


def test_entropy_decreases_as_gamma_grows():
    model = build_transformer("wan")
    inputs = dummy_inputs("wan", num_frames=3, height=8, width=8, generator=torch.Generator().manual_seed(0))
    means, first_block = [], []
    for gamma in (1.0, 1.35, 2.0, 3.0):
        config = ASMConfig.preset("wan2.1", gamma_q=gamma, gamma_k=gamma, blocks="all", window="all")
        probe = EntropyProbe(model, sites=("cross_image", "cross_text"), max_queries=None)
        with apply_asm(model, config), probe:
            model(**inputs)
        entropy = probe.entropy()
        means.append(np.mean(list(entropy.values())))
        first_block.append([entropy[(site, 0, 999.0)] for site in ("cross_image", "cross_text")])
    assert all(a > b for a, b in zip(means, means[1:], strict=False)), means
    # block 0 sees the same inputs at every gamma: there the decrease is exact, site by site
    for earlier, later in zip(first_block, first_block[1:], strict=False):
        assert all(a > b for a, b in zip(earlier, later, strict=True))


def test_analysis_entropy_and_attention_maps(tiny_pipeline, tmp_path):
    from omiti2v.calibrate.analysis import AnalysisConfig, entropy_curves, run_analysis

    pipe, baseline, settings, samples = tiny_pipeline
    config = AnalysisConfig(samples=1, gammas=(1.0, 2.0), blur=(False, True), steps=1,
                            tokens=((0.5, 0.5, 0.5), (1.0, 0.0, 1.0)))
    result = run_analysis(pipe, baseline, settings, samples, config, tmp_path)
    assert {(r["blur"], r["gamma"]) for r in result.records} == {(False, 1.0), (False, 2.0), (True, 1.0), (True, 2.0)}
    assert {r["site"] for r in result.records} == {"cross_image", "cross_text"}
    assert {r["timestep"] for r in result.records} == {999.0}
    by_key = {(r["blur"], r["gamma"], r["site"], r["block"]): r["entropy"] for r in result.records}
    for blur in (False, True):
        for site in ("cross_image", "cross_text"):
            assert by_key[(blur, 2.0, site, 0)] < by_key[(blur, 1.0, site, 0)]
    assert by_key[(True, 1.0, "cross_image", 0)] != by_key[(False, 1.0, "cross_image", 0)]  # blur changes the input
    curves = entropy_curves(result.records)
    assert set(curves) == {"cross_image", "cross_image (blurred input)", "cross_text", "cross_text (blurred input)"}
    entry = result.maps[(result.records[0]["sample_id"], False, 1.0)]
    assert entry["maps"].shape == (2, 4, 4) and entry["square_crop"]
    assert np.all(entry["maps"] >= 0) and np.all(entry["maps"].sum(axis=(1, 2)) <= 1 + 1e-5)
    for name in ("entropy.jsonl", "entropy_vs_gamma.png", "entropy_heatmap.png", "attention_maps.png"):
        assert (tmp_path / name).stat().st_size > 0


def test_saliency_mask_finds_a_distinct_object():
    array = np.full((96, 128, 3), (90, 140, 90), dtype=np.uint8)
    array[30:66, 70:110] = (230, 30, 30)
    mask = foreground_mask(Image.fromarray(array))
    truth = np.zeros(mask.shape, bool)
    truth[30:66, 70:110] = True
    assert (mask & truth).sum() / (mask | truth).sum() > 0.8
    coverage = grid_coverage(truth, (3, 4)).reshape(3, 4)
    assert float(coverage[1, 2]) == pytest.approx(26 / 32)  # cell rows 32-64, cols 64-96
    assert coverage[0, 0] == 0 and float(coverage.mean()) == pytest.approx(truth.mean())
    square = grid_coverage(truth, (2, 2), square_crop=True).reshape(2, 2)  # centre 96x96 crop: cols 16..112
    assert square[:, 1].min() > square[:, 0].max()


def test_cli_calibrate_writes_blocks(tmp_path):
    from omiti2v.cli import main

    out = tmp_path / "cal"
    assert main(["calibrate", "--model", "wan2.1-tiny", "--data", "mini", "--samples", "1", "--steps", "1",
                 "--top-k", "1", "--out", str(out)]) == 0
    assert len(load_calibrated_blocks(out / "blocks.yaml", "wan2.1-tiny")) == 1
