"""ASM under regional torch.compile, the generic adapter by role, and failing loudly when bypassed."""

import dataclasses
import math
from pathlib import Path

import pytest
import torch
from torch._dynamo.utils import counters

from omiti2v.asm import ASMConfig, apply_asm
from omiti2v.asm.lifecycle import ASMBypassedError
from omiti2v.asm.processors import find_attention_sites, intercept_attention
from omiti2v.asm.sites import find_scaling_sites
from omiti2v.context import RunContext
from omiti2v.generate.compile import compile_regions
from omiti2v.models.architectures import FAMILIES, build_transformer, dummy_inputs
from omiti2v.models.architectures_modern import build_modern_transformer, modern_transformer_config

PRESET_OF = {"wan": "wan2.1", "skyreels": "skyreels-v2-i2v", "skyreels-df": "skyreels-v2-df",
             "hunyuan": "hunyuan-i2v", "framepack": "framepack", "easyanimate": "easyanimate"}
GENERIC = ASMConfig(strategy="scalar", gamma_k=1.35, blocks="all", window="all")
TIMESTEPS = (999.0, 950.0, 800.0, 901.0, 500.0, 999.0)  # in, in, out, in, out, in the early window


def _build(family):
    return build_modern_transformer("ltx-video", "tiny", torch.float32, "cpu") if family == "ltx" else \
        build_transformer(family, seed=0)


def _inputs(family, timestep=999.0):
    generator = torch.Generator().manual_seed(1)
    if family == "ltx":  # packed latent tokens (patch size 1): 2 frames of 4 x 4
        config = modern_transformer_config("ltx-video", "tiny")
        return {"hidden_states": torch.randn(1, 2 * 4 * 4, config["in_channels"], generator=generator),
                "encoder_hidden_states": torch.randn(1, 8, config["caption_channels"], generator=generator),
                "timestep": torch.full((1,), timestep), "encoder_attention_mask": torch.ones(1, 8, dtype=torch.long),
                "num_frames": 2, "height": 4, "width": 4, "return_dict": False}
    size = 16 if family == "framepack" else 8
    return dummy_inputs(family, height=size, width=size, timestep=timestep, generator=generator)


def _forward(model, inputs):
    with torch.no_grad():
        return model(**inputs)[0]


def _config(family, strategy="scalar"):
    return (dataclasses.replace(GENERIC, strategy=strategy) if family == "ltx"
            else ASMConfig.preset(PRESET_OF[family], strategy=strategy))


# the intercepting strategies on each distinct processor: Wan's two cross-attention calls, the HunyuanVideo-family
# processor with RoPE (FramePack), EasyAnimate's direct SDPA call (BHSD) and a model without a preset (LTX)
@pytest.mark.parametrize("family,strategy", [*((family, "scalar") for family in [*FAMILIES, "ltx"]),
                                             *((family, strategy) for family in ("wan", "framepack", "easyanimate", "ltx")
                                               for strategy in ("energy", "blur_key"))])
def test_compiled_asm_equals_eager_without_recompiling_and_removes(family, strategy):
    torch._dynamo.reset()
    model = _build(family)
    config = _config(family, strategy)
    inputs = {t: _inputs(family, t) for t in TIMESTEPS}
    baseline = {t: _forward(model, inputs[t]) for t in TIMESTEPS}
    with apply_asm(model, config):
        eager = {t: _forward(model, inputs[t]) for t in TIMESTEPS}
    handle = apply_asm(model, config)
    compile_regions(model, fullgraph=True, backend="aot_eager")
    counters.clear()
    compiled = {TIMESTEPS[0]: _forward(model, inputs[TIMESTEPS[0]])}
    graphs = counters["stats"]["unique_graphs"]
    assert graphs >= 1
    for t in TIMESTEPS[1:]:
        compiled[t] = _forward(model, inputs[t])
    assert counters["stats"]["unique_graphs"] == graphs  # no new graph in or out of the window
    for t in TIMESTEPS:
        torch.testing.assert_close(compiled[t], eager[t], rtol=1e-5, atol=1e-6)
        active = config.step_active(t)
        assert (compiled[t] - baseline[t]).abs().max() > 1e-4 if active else torch.equal(eager[t], baseline[t])
    handle.remove()
    torch.testing.assert_close(_forward(model, inputs[999.0]), baseline[999.0], rtol=1e-5, atol=1e-6)


def _old_processor_path(model, config):
    """Reference: the hand-written processors' scalar ASM (logit factor folded into the SDPA scale)."""
    from omiti2v.asm.gating import TimestepTracker

    tracker = TimestepTracker(model)

    def fold(call):
        if call.site in config.sites and config.block_selected(call.block) and config.step_active(tracker.current):
            call.logit_scale *= config.logit_multiplier(call.site)

    sites = [s for s in find_attention_sites(model) if set(s.sites) & set(config.sites)]
    interception = intercept_attention(sites, fold)
    return [interception, tracker]


@pytest.mark.parametrize("family", FAMILIES)
def test_generic_adapter_equals_hand_written_processors(family):
    model = build_transformer(family, seed=0)
    roles = {s.module_name: s.roles for s in find_scaling_sites(model)}
    assert roles == {s.module_name: s.sites for s in find_attention_sites(model)}  # same sites, same roles
    inputs = _inputs(family)
    preset = ASMConfig.preset(PRESET_OF[family])
    # the preset, and gamma_q = 1.2 on its last site only (Wan: the text branch, whose query is shared)
    for config in (preset, ASMConfig.preset(PRESET_OF[family], gamma_q=1.2, q_sites=preset.sites[-1:], blocks="all")):
        with apply_asm(model, config):
            generic = _forward(model, inputs)
        parts = _old_processor_path(model, config)
        try:
            reference = _forward(model, inputs)
        finally:
            for part in parts:
                part.remove()
        torch.testing.assert_close(generic, reference, rtol=1e-5, atol=1e-6)
        assert (generic - _forward(model, inputs)).abs().max() > 1e-4


def test_wan_text_only_query_factor_moves_to_the_text_key():
    """q is shared by Wan's image and text branches: gamma_q on the text branch alone goes onto its key."""
    model = build_transformer("wan", seed=0)
    config = ASMConfig.preset("wan2.1", gamma_q=1.2, q_sites=("cross_text",))
    with apply_asm(model, config) as handle:
        _forward(model, _inputs("wan"))
        multipliers = handle.logit_multipliers()
    assert multipliers[("blocks.0.attn2", "cross_image")] == 1.0
    assert multipliers[("blocks.0.attn2", "cross_text")] == pytest.approx(1.2 * 1.35, rel=1e-6)
    assert multipliers[("blocks.1.attn2", "cross_text")] == 1.0  # block 1 is not in the BGS list


@pytest.mark.parametrize("family, overrides", [("wan", {"gamma_q": 1.2}), ("framepack", {}), ("hunyuan", {"gamma_k": 1.5})])
def test_record_is_what_the_hooks_apply(family, overrides):
    """`resolved_asm` (ASMHandle.record) names exactly the factors the hooks put on the logits in a forward inside
    the window: its multiplier per site in its blocks, 1 everywhere else."""
    model = build_transformer(family, seed=0)
    with apply_asm(model, ASMConfig.preset(PRESET_OF[family], **overrides)) as handle:
        _forward(model, _inputs(family))
        applied, record, modulated = handle.logit_multipliers(), handle.record(), handle.module_names
    selected = {key: factor for key, factor in applied.items() if int(key[0].split(".")[1]) in record["blocks"]
                and key[1] in record["sites"]}
    assert selected and record["blocks"] == sorted({int(name.split(".")[1]) for name in modulated})
    for (_, site), factor in selected.items():
        assert factor == pytest.approx(record["logit_multipliers"][site], rel=1e-6)
    assert all(factor == 1.0 for key, factor in applied.items() if key not in selected)
    assert record["window"] == [900.0, None] and record["preset_gamma"] is (not overrides)


class _SDPALogits(torch.overrides.TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.logits = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.nn.functional.scaled_dot_product_attention:
            bound = dict(zip(("query", "key"), args[:2], strict=False), **kwargs)
            q, k = bound["query"], bound["key"]
            self.logits.append((kwargs.get("scale") or 1 / math.sqrt(q.shape[-1])) * q @ k.transpose(-1, -2))
        return func(*args, **kwargs)


def test_ltx_default_recipe_scales_text_cross_attention_only():
    model = _build("ltx")
    inputs = _inputs("ltx")
    with _SDPALogits() as base:
        baseline = _forward(model, inputs)
    with apply_asm(model, GENERIC) as handle, _SDPALogits() as asm:
        modulated = _forward(model, inputs)
        assert handle.module_names == ["transformer_blocks.0.attn2", "transformer_blocks.1.attn2"]
    assert not torch.allclose(modulated, baseline)
    torch.testing.assert_close(asm.logits[0], base.logits[0], rtol=0, atol=0)  # block 0 self-attention
    torch.testing.assert_close(asm.logits[1], base.logits[1] * 1.35, rtol=1e-5, atol=1e-6)  # block 0 text
    with pytest.raises(ValueError, match=r"match no attention.*cross_text: 2 blocks \(transformer_blocks\.\*\.attn2\)"):
        apply_asm(model, ASMConfig(strategy="scalar", gamma_k=1.35, k_sites=("single",)))
    assert torch.equal(_forward(model, inputs), baseline)  # the failed install left nothing behind


def _skip_blocks(model):
    """What a cache hook (TeaCache) does: a forward whose block stacks do not run."""
    saved = []
    for block in [*model.transformer_blocks, *model.single_transformer_blocks]:
        saved.append((block, block.forward))
        block.forward = lambda hidden_states, encoder_hidden_states, *a, **k: (hidden_states, encoder_hidden_states)
    return saved


def _bypass(attention, strategy):
    """A diffusers "refactor" that no longer runs what ASM hooks: the Q/K norm (scalar) or the processor's
    attention call (intercepting strategies); returns the undo."""
    if strategy == "scalar":
        norm = attention.norm_k
        attention.norm_k = torch.nn.Identity()
        return lambda: setattr(attention, "norm_k", norm)
    from diffusers.models.transformers.transformer_hunyuan_video import HunyuanVideoAttnProcessor2_0

    processor = attention.processor
    attention.processor = HunyuanVideoAttnProcessor2_0()  # a fresh processor, not the intercepting one
    return lambda: setattr(attention, "processor", processor)


@pytest.mark.parametrize("strategy", ["scalar", "energy", "blur_key"])
def test_bypassed_site_raises_but_a_skipped_stack_passes(strategy):
    model = build_transformer("framepack", seed=0)
    inputs = _inputs("framepack")
    with apply_asm(model, ASMConfig.preset("framepack", strategy=strategy)):
        saved = _skip_blocks(model)
        with pytest.raises(ASMBypassedError, match="no attention call"):  # the first in-window step must run
            _forward(model, inputs)
        for block, forward in saved:
            block.forward = forward
        _forward(model, inputs)
        saved = _skip_blocks(model)
        _forward(model, inputs)  # a cached step after a computed one is fine
        for block, forward in saved:
            block.forward = forward
        undo = _bypass(model.single_transformer_blocks[2].attn, strategy)
        with pytest.raises(ASMBypassedError, match=r"single_transformer_blocks\.2\.attn \(single\)"):
            _forward(model, inputs)
        _forward(model, _inputs("framepack", timestep=500.0))  # outside the window nothing is checked
        undo()


def test_generation_compile_regional_matches_eager_and_is_recorded(tmp_path):
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from omiti2v.data import benchmark_from_config
    from omiti2v.generate.runner import run_generation
    from omiti2v.runs import RunDir, read_jsonl
    from omiti2v.video import read_video

    conf = str(Path(__file__).resolve().parents[1] / "conf")

    def run(folder, *overrides):
        with initialize_config_dir(config_dir=conf, version_base="1.3"):
            cfg = compose("config", overrides=["model=wan2.1-tiny", "asm=scalar", "schedule=all", "data=mini",
                                               "data.limit=1", "device=cpu", *overrides])
        OmegaConf.set_struct(cfg, False)
        run_generation(RunContext.from_config(cfg), RunDir(tmp_path / folder), benchmark_from_config(cfg.data))
        (record,) = read_jsonl(tmp_path / folder / "generation.jsonl")
        return record, read_video(tmp_path / folder / "videos" / "mini_0.mp4")[0]

    torch._dynamo.reset()
    counters.clear()
    eager, eager_frames = run("eager")
    assert not counters["stats"]["unique_graphs"]
    compiled, compiled_frames = run("compiled", "generation.compile=regional", "generation.compile_backend=aot_eager")
    assert counters["stats"]["unique_graphs"] >= 1  # the blocks did run compiled
    assert (eager["status"], eager["compile"], compiled["status"], compiled["compile"]) == ("ok", "none", "ok",
                                                                                           "regional")
    assert eager["config_hash"] == compiled["config_hash"]
    assert abs(eager_frames.astype(int) - compiled_frames).max() <= 1
    graphs = counters["stats"]["unique_graphs"]
    energy, energy_frames = run("energy", "asm=energy")
    compiled, compiled_frames = run("energy-compiled", "asm=energy", "generation.compile=regional",
                                    "generation.compile_backend=aot_eager")
    assert counters["stats"]["unique_graphs"] > graphs and compiled["status"] == "ok"
    assert abs(energy_frames.astype(int) - compiled_frames).max() <= 1


def test_compile_benchmark_tiny_mode_counts_no_new_graph_over_the_sweep():
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "asm_overhead.py"
    spec = importlib.util.spec_from_file_location("asm_overhead", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    torch._dynamo.reset()
    result = bench.run_compile_case("wan2.1-i2v-14b", "tiny", torch.device("cpu"), torch.float32, 1, "aot_eager")
    assert result["sweep"]["steps"] == 40 and 0 < result["sweep"]["in_window"] < 40
    for strategy in ("scalar", "energy"):
        assert result["sweep"][strategy]["new_graphs"] == 0
        assert result[f"{strategy}_compiled_max_abs_diff_vs_eager"] < 1e-5 < result["eager_asm_max_abs"]
    assert {"baseline", "scalar", "energy"} == set(result["eager"]) == set(result["compiled"])
    # the floor's config (gamma moved between Q and K) has the preset's logit multipliers, so it is reported
    assert result["noise_floor_max_abs_diff"] is not None and result["noise_floor_max_abs_diff"] < 1e-5
    pipeline = bench.run_pipeline_case("ltx-video-tiny", torch.device("cpu"), 0, 1)
    assert pipeline["scalar"]["modulated_modules"] > 0 and pipeline["scalar"]["time_ratio"] > 0


def test_summary_records_the_compile_mode_and_the_schema_checks_it():
    import jsonschema
    from hydra import compose, initialize_config_dir

    from omiti2v.summary import summary_context, summary_schema

    with initialize_config_dir(config_dir=str(Path(__file__).resolve().parents[1] / "conf"), version_base="1.3"):
        default = compose("smoke")
        regional = compose("smoke", overrides=["generation.compile=regional"])
    assert summary_context(RunContext.from_config(default))["run"]["compile"] == "none"
    run = summary_context(RunContext.from_config(regional))["run"]
    assert run["compile"] == "regional"
    run_schema = summary_schema()["properties"]["run"]
    jsonschema.validate(run, run_schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**run, "compile": "max-autotune"}, run_schema)


def test_asm_survives_moving_the_model_after_install():
    """`.to()` (and CPU offload, which moves the model at every forward) replaces buffer tensors: the gate must
    still close and reopen the window on the new ones."""
    model = build_transformer("wan", seed=0)
    early, late = _inputs("wan"), _inputs("wan", timestep=500.0)
    baseline_late = _forward(model, late)
    with apply_asm(model, ASMConfig.preset("wan2.1")):
        before = _forward(model, early)
        model.to(torch.float64).to(torch.float32)
        assert torch.equal(_forward(model, late), baseline_late)
        torch.testing.assert_close(_forward(model, early), before, rtol=1e-6, atol=1e-6)
    assert not torch.allclose(_forward(model, early), before)


@pytest.mark.parametrize("preset, modulated", [
    ("wan2.2", ["blocks.0.attn2", "blocks.1.attn2", "blocks.2.attn2"]),
    ("hunyuan-video-1.5", ["transformer_blocks.0.attn", "transformer_blocks.1.attn"]),
    ("ltx-video", ["transformer_blocks.0.attn2", "transformer_blocks.1.attn2"]),
])
def test_newer_baseline_presets_find_their_roles(preset, modulated):
    model = build_modern_transformer(preset, "tiny", torch.float32, "cpu")
    with apply_asm(model, ASMConfig.preset(preset)) as handle:
        assert handle.module_names == modulated
