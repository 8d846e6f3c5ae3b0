"""Newer baselines (Wan2.2-I2V-A14B, HunyuanVideo-1.5 I2V, LTX-Video I2V): configs, real sizes, tiny videos,
and Wan2.2's two experts (which one runs at which timestep; ASM on both)."""

import json
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from omiti2v.asm import ASMConfig, apply_asm
from omiti2v.context import RunContext
from omiti2v.data import benchmark_from_config
from omiti2v.generate import run_generation
from omiti2v.generate.runner import expected_frames
from omiti2v.models import MODELS, baseline_for, get_baseline
from omiti2v.models.architectures_modern import build_modern_transformer
from omiti2v.runs import RunDir
from omiti2v.video import read_video

CONF = Path(__file__).resolve().parents[1] / "conf"
PAPER = ["wan2.1", "hunyuan-i2v", "skyreels-v2-i2v", "skyreels-v2-df", "framepack", "framepack-f1", "easyanimate"]
MODERN = ["wan2.2", "hunyuan-video-1.5", "ltx-video"]


def compose_cfg(model: str, *overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=[f"model={model}", "asm=none", "data=mini", "data.limit=1", "device=cpu",
                                           *overrides])
    OmegaConf.set_struct(cfg, False)
    return cfg


def generate(cfg, path: Path) -> dict:
    return run_generation(RunContext.from_config(cfg), RunDir(path), benchmark_from_config(cfg.data))


def test_registry_holds_paper_and_newer_baselines():
    assert sorted(MODELS) == sorted(PAPER + MODERN)


@pytest.mark.parametrize("name", MODERN)
def test_presets_are_our_default(name):
    cfg = compose_cfg(name).model
    assert baseline_for(cfg).name == name
    assert ASMConfig.preset(cfg.asm_preset).gamma_k == 1.35 and ASMConfig.preset(cfg.asm_preset).window == "early"


def test_official_settings_and_frame_rules():
    wan, hv, ltx = (get_baseline(n).settings() for n in MODERN)
    assert (wan["fps"], wan["sampling"]["num_frames"], wan["sampling"]["num_inference_steps"]) == (16, 81, 40)
    assert wan["sampling"]["scheduler"]["flow_shift"] == 5.0 and get_baseline("wan2.2").boundary_ratio == 0.9
    wan_asm = ASMConfig.preset("wan2.2")
    assert wan_asm.logit_multiplier("cross_text") == pytest.approx(1.35**2) and wan_asm.preset_blocks is None
    assert ASMConfig.preset("ltx-video").logit_multiplier("cross_text") == 1.35
    assert (hv["fps"], hv["sampling"]["num_frames"], hv["sampling"]["num_inference_steps"]) == (24, 121, 50)
    assert hv["guidance_scale"] == 6.0
    assert get_baseline("hunyuan-video-1.5").forwards_per_step(hv["sampling"]) == 2  # guider CFG 6.0
    assert (ltx["fps"], ltx["sampling"]["num_frames"], ltx["sampling"]["num_inference_steps"]) == (24, 161, 50)
    with pytest.raises(ValueError, match="8k\\+1"):
        get_baseline("ltx-video").settings({"sampling": {"num_frames": 85}})  # 4k+1 but not 8k+1
    assert expected_frames(compose_cfg("ltx-video").model) == 161


@pytest.mark.parametrize(("family", "billions"), [("wan2.2", 14.29), ("hunyuan-video-1.5", 8.33),
                                                  ("ltx-video", 1.92)])
def test_real_size_transformers_have_the_published_parameter_counts(family, billions):
    model = build_modern_transformer(family, "real", torch.bfloat16, "meta")
    assert sum(p.numel() for p in model.parameters()) / 1e9 == pytest.approx(billions, abs=0.01)


@pytest.mark.parametrize("model", [f"{n}-tiny" for n in MODERN])
def test_tiny_baseline_writes_decodable_video(model, tmp_path):
    cfg = compose_cfg(model)
    assert generate(cfg, tmp_path)["ok"] == 1
    frames, info = read_video(tmp_path / "videos" / "mini_0.mp4")
    assert info.num_frames == len(frames) == expected_frames(cfg.model) == cfg.model.sampling.num_frames
    assert info.fps == pytest.approx(cfg.model.fps)
    assert frames.std() > 0
    sidecar = json.loads((tmp_path / "videos" / "mini_0.json").read_text())
    assert (sidecar["settings"]["height"], sidecar["settings"]["width"]) == (info.height, info.width)


# ---- Wan2.2: two experts ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def wan22_pipe():
    baseline = get_baseline("wan2.2")
    settings = baseline.settings(compose_cfg("wan2.2-tiny").model)  # 4 steps, toy size
    pipe = baseline.build(settings)
    pipe.set_progress_bar_config(disable=True)
    return baseline, settings, pipe


def expert_inputs(pipe, timestep: float) -> dict:
    cfg = pipe.transformer.config
    g = torch.Generator().manual_seed(0)
    return {"hidden_states": torch.randn(1, cfg.in_channels, 2, 8, 8, generator=g),
            "timestep": torch.tensor([timestep]),
            "encoder_hidden_states": torch.randn(1, 512, cfg.text_dim, generator=g), "return_dict": False}


def test_wan22_high_noise_expert_runs_until_the_boundary(wan22_pipe):
    from PIL import Image

    baseline, settings, pipe = wan22_pipe
    calls = {"transformer": [], "transformer_2": []}
    hooks = [getattr(pipe, name).register_forward_pre_hook(
        lambda m, a, kw, name=name: calls[name].append(float(kw["timestep"].flatten()[0])), with_kwargs=True)
        for name in calls]
    try:
        image, height, width = baseline.prepare_image(Image.new("RGB", (64, 40), (200, 30, 30)), settings)
        pipe(**baseline.call_kwargs(pipe, image, "a cat", height, width, settings))
    finally:
        for hook in hooks:
            hook.remove()
    timesteps = [float(t) for t in pipe.scheduler.timesteps]
    assert timesteps == [999.0, 937.0, 833.0, 625.0]  # flow shift 5: two steps on each side of t = 900
    # Classifier-free guidance: each expert runs twice per step (cond, uncond) at its own timesteps.
    assert calls["transformer"] == [t for t in timesteps if t >= 900 for _ in range(2)]
    assert calls["transformer_2"] == [t for t in timesteps if t < 900 for _ in range(2)]


def test_asm_on_the_pipeline_reaches_both_experts(wan22_pipe):
    _, _, pipe = wan22_pipe
    config = ASMConfig.preset("wan2.2")
    with torch.no_grad():
        base = {(name, t): getattr(pipe, name)(**expert_inputs(pipe, t))[0]
                for name in ("transformer", "transformer_2") for t in (950.0, 500.0)}
        with apply_asm(pipe, config) as handle:
            assert len(handle.module_names) == 2 * pipe.transformer.config.num_layers  # attn2 of every block, x2
            modulated = {key: getattr(pipe, key[0])(**expert_inputs(pipe, key[1]))[0] for key in base}
        restored = {key: getattr(pipe, key[0])(**expert_inputs(pipe, key[1]))[0] for key in base}
    for name in ("transformer", "transformer_2"):
        assert not torch.allclose(modulated[name, 950.0], base[name, 950.0], atol=1e-6)  # early window: t > 900
        assert torch.equal(modulated[name, 500.0], base[name, 500.0])  # outside the window: untouched
    assert all(torch.equal(restored[key], base[key]) for key in base)


def test_generation_with_asm_modulates_the_wan22_video(tmp_path):
    generate(compose_cfg("wan2.2-tiny", "asm=scalar", "schedule=early"), tmp_path / "on")
    generate(compose_cfg("wan2.2-tiny"), tmp_path / "off")
    on, _ = read_video(tmp_path / "on" / "videos" / "mini_0.mp4")
    off, _ = read_video(tmp_path / "off" / "videos" / "mini_0.mp4")
    assert on.shape == off.shape and (on != off).any()


def test_tables_and_leaderboard_list_the_newer_baselines_without_paper_numbers():
    from omiti2v.leaderboard.board import leaderboard_frame
    from omiti2v.report import build_tables, load_paper

    paper = load_paper()
    table = build_tables([], "omiti2v", paper)["baselines"]
    assert sorted(table["model"].tolist()[:7]) == sorted(PAPER) and table["model"].tolist()[7:] == MODERN
    newer = table[table["model"].isin(MODERN)]
    assert newer["model_label"].tolist() == ["Wan2.2-I2V-A14B", "HunyuanVideo-1.5 I2V", "LTX-Video I2V"]
    for m in ("modification", "addition", "deletion", "dynamic_degree", "aesthetic_quality", "overall"):
        assert newer[f"{m}_paper"].isna().all() and newer[m].isna().all()
    board = leaderboard_frame([], paper)
    unreported = board[board["kind"] == "unreported"]
    assert unreported["model"].tolist() == MODERN and unreported["overall"].isna().all()
    assert (board["kind"] == "paper").sum() == 10 and board["kind"].tolist()[-3:] == ["unreported"] * 3


def test_planner_costs_the_newer_baselines():
    from omiti2v.generate.planner import plan_config

    def plan(*overrides):
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            return plan_config(compose("config", overrides=["device=cpu", "asm=none", *overrides]), repeats=1)

    ltx = plan("model=ltx-video-tiny")  # 64x64 px, 9 frames -> latent 2x2x2, packed by the pipeline
    assert (ltx.frames, ltx.video_tokens, ltx.forwards_per_step) == (9, 8, 2)
    hv = plan("model=hunyuan-video-1.5-tiny")  # bucket 48x80 of target 64 -> latent 2x3x5, patch 1
    assert (hv.height, hv.width, hv.video_tokens, hv.forwards_per_step) == (48, 80, 30, 2)
    wan = plan("model=wan2.2-tiny", "asm=scalar", "schedule=paper")
    assert (wan.denoising_steps, wan.asm_active_steps) == (4, 2)  # 999, 937 > 900: the high-noise expert's steps


def test_hunyuan15_guidance_setting_reaches_the_guider():
    baseline = get_baseline("hunyuan-video-1.5")
    settings = baseline.settings({**OmegaConf.to_container(compose_cfg("hunyuan-video-1.5-tiny").model),
                                  "guidance_scale": 4.5})
    pipe = baseline.build(settings)
    assert pipe.guider.guidance_scale == 4.5 and pipe.tokenizer_max_length == 24  # tiny text lengths


def test_calibration_scores_the_high_noise_expert_in_the_early_window(tmp_path):
    import yaml

    from omiti2v.cli import main

    out = tmp_path / "cal"
    assert main(["calibrate", "--model", "wan2.2-tiny", "--data", "mini", "--samples", "1", "--device", "cpu",
                 "--top-k", "2", "--out", str(out)]) == 0
    blocks = yaml.safe_load((out / "blocks.yaml").read_text())
    assert blocks["timesteps"] == [999.0, 937.0]  # the early window: the steps `transformer` (high noise) runs
    assert blocks["site"] == "self" and len(blocks["blocks"]) == 2 and blocks["num_blocks"] == 3
