"""Cost planner on the tiny models (CPU): token counts, forwards per step, ASM step-window weighting."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from omiti2v.generate.costs_table import StepCost, format_costs
from omiti2v.generate.planner import plan_config

CONF = Path(__file__).resolve().parents[1] / "conf"


def plan(*overrides):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return plan_config(compose("config", overrides=["device=cpu", "asm=none", *overrides]), repeats=1)


def test_plan_counts_tokens_forwards_and_sections():
    wan = plan("model=wan2.1-tiny", "model.sampling.guidance_scale=5.0")
    # 32x64 px, 5 frames -> latent 2x4x8 -> patches (1,2,2): 2*2*4 tokens; CFG 5.0 -> 2 forwards per step
    assert (wan.height, wan.width, wan.frames, wan.video_tokens) == (32, 64, 5, 16)
    assert wan.forwards_per_step == 2 and wan.denoising_steps == 2
    assert wan.seconds_per_video == pytest.approx(2 * wan.seconds_per_step, rel=0.05, abs=0.02)
    assert wan.hours_per_config == pytest.approx(wan.seconds_per_video * 367 / 3600, rel=0.05, abs=0.01)
    fp = plan("model=framepack-tiny", "model.sampling.num_frames=17")  # 2 sections of window 2
    assert fp.forwards_per_step == 1 and fp.denoising_steps == 2 * 2
    table = format_costs([wan, fp])
    assert "wan2.1-tiny" in table and "framepack-tiny" in table


def test_plan_halves_wan_at_guidance_one_and_counts_teacache():
    paper = plan("model=wan2.1-tiny")                       # guidance 1.0: the unconditional pass is skipped
    assert paper.forwards_per_step == 1 and paper.computed_fraction == 1.0
    assert paper.seconds_per_video == pytest.approx(paper.seconds_per_forward * 2, rel=0.02, abs=0.01)
    fp = plan("model=framepack-tiny", "model.sampling.num_frames=17", "+plan.teacache_computed_fraction=0.5")
    assert fp.computed_fraction == 0.5
    assert fp.seconds_per_video == pytest.approx(fp.seconds_per_forward * 4 * 0.5, rel=0.02, abs=0.01)
    assert plan("model=framepack-tiny", "model.teacache.enabled=false").computed_fraction == 1.0
    assert plan("model=framepack-tiny").computed_fraction == 0.6


def test_plan_weights_steps_inside_the_asm_window():
    cost = plan("model=wan2.1-tiny", "asm=scalar", "schedule=paper", "model.sampling.num_inference_steps=4")
    assert isinstance(cost, StepCost) and cost.asm == "scalar"
    assert 1 <= cost.asm_active_steps < 4  # the early window (t > 900) holds only the first steps
    assert cost.seconds_per_forward_outside_window is not None


def test_plan_counts_framepacks_early_window_on_its_own_timesteps():
    # FramePack's UniPC timesteps at the 640-bucket shift: 11 of 25 per section have t > 900 (also bf16-cast).
    cost = plan("model=framepack-tiny", "asm=scalar", "schedule=paper", "model.sampling.num_inference_steps=25")
    assert cost.denoising_steps == 25 and cost.asm_active_steps == 11


def test_plan_times_the_compiled_transformer_under_regional_compile():
    import torch._dynamo

    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    eager = plan("model=wan2.1-tiny", "asm=scalar")
    assert eager.compile == "none" and not torch._dynamo.utils.counters["stats"]["unique_graphs"]
    compiled = plan("model=wan2.1-tiny", "asm=scalar", "generation.compile=regional",
                    "generation.compile_backend=aot_eager")
    assert compiled.compile == "regional" and torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 1
