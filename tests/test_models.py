"""Model registry: the seven baselines, the settings the paper (arXiv 2512.01334) ran them with, image sizing and the weights errors."""

import json
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from omiti2v.context import RunContext
from omiti2v.data import benchmark_from_config
from omiti2v.generate import run_generation
from omiti2v.models import (
    MODELS,
    WeightsNotFoundError,
    baseline_for,
    bucket_size,
    get_baseline,
    max_area_size,
    model_names,
    model_settings,
    target_size,
)
from omiti2v.models.base import SETTINGS_KEYS
from omiti2v.models.sizing import FRAMEPACK_BUCKETS_640, framepack_fit_image
from omiti2v.runs import RunDir, to_plain
from omiti2v.video import read_video

CONF = Path(__file__).resolve().parents[1] / "conf"
BASELINES = ["wan2.1", "hunyuan-i2v", "skyreels-v2-i2v", "skyreels-v2-df", "framepack", "framepack-f1", "easyanimate"]


def model_cfg(name: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("config", overrides=[f"model={name}"]).model


def test_registry_holds_the_seven_baselines():
    assert set(BASELINES) <= set(MODELS)  # the newer ones: tests/test_models_modern.py


@pytest.mark.parametrize("name", model_names())
def test_model_settings_is_what_hydra_composes(name):
    """Code without Hydra (benchmarks, planner, tests) sees the same numbers as `model=<name>` on the command line."""
    composed = OmegaConf.to_container(model_cfg(name), resolve=True)
    own = model_settings(name)
    # the profile group (conf/profile/) sets seed_mode for every model on top of the model yaml
    assert own.pop("seed_mode") in ("fixed", "per_sample") and composed.pop("seed_mode") in ("fixed", "per_sample")
    assert own == composed


@pytest.mark.parametrize("name", model_names())
def test_every_yaml_key_is_read(name):
    """A key in conf/model/*.yaml that no code reads would be an override that silently does nothing."""
    cfg = model_cfg(name)
    baseline = baseline_for(cfg)
    assert set(baseline.settings(cfg)) == set(cfg)
    unread = {**OmegaConf.to_container(cfg), "family": "wan"}
    with pytest.raises(ValueError, match="family.*not read by baseline"):
        baseline.settings(unread)


def test_declared_keys_are_read_by_the_code():
    """Each key `settings()` accepts is looked up somewhere in omiti2v/ (by ["key"] or .get("key"))."""
    source = "\n".join(p.read_text() for p in (CONF.parent / "omiti2v").rglob("*.py"))
    keys = {*SETTINGS_KEYS, *(k for cls in MODELS.values() for k in (*cls.extra_checkpoints, *cls.extra_keys))}
    unread = sorted(k for k in keys if f'["{k}"]' not in source and f'.get("{k}"' not in source)
    assert not unread


def test_command_line_overrides_reach_the_runner(tmp_path):
    """model.fps / model.sampling.* given on the command line are what the generated video uses."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=["model=wan2.1-tiny", "asm=none", "data=mini", "data.limit=1", "device=cpu",
                                           "model.fps=7", "model.sampling.num_inference_steps=3",
                                           "model.sampling.num_frames=9"])
    assert run_generation(RunContext.from_config(cfg), RunDir(tmp_path), benchmark_from_config(cfg.data))["ok"] == 1
    frames, info = read_video(tmp_path / "videos" / "mini_0.mp4")
    sidecar = json.loads((tmp_path / "videos" / "mini_0.json").read_text())
    assert (info.fps, info.num_frames, len(frames)) == (7, 9, 9)
    assert sidecar["settings"]["sampling"]["num_inference_steps"] == 3


def test_reference_settings():
    wan, fp, f1, sky_df = (model_settings(n) for n in ("wan2.1", "framepack", "framepack-f1", "skyreels-v2-df"))
    assert (wan["fps"], wan["sampling"]["num_frames"], wan["sampling"]["num_inference_steps"]) == (16, 81, 40)
    assert wan["sampling"]["scheduler"] == {"class": "WanFlowUniPCScheduler", "flow_shift": 3.0}
    assert wan["scheduler"]["flow_shift"] == 3.0 and (wan["noise"], fp["noise"]) == ("device", "cpu")
    assert (fp["fps"], f1["fps"]) == (30, 24) and f1["sampling"]["sampling_type"] == "vanilla"
    assert fp["seed"] == f1["seed"] == 31337 and f1["transformer"] != fp["transformer"]
    assert sky_df["sampling"]["ar_step"] == 0 and sky_df["sampling"]["base_num_frames"] == 97
    assert model_settings("wan2.1", ["sampling.num_inference_steps=3"])["sampling"]["num_inference_steps"] == 3


def test_framepack_frames_are_sections_of_the_latent_window():
    fp = get_baseline("framepack")
    sampling = fp.settings()["sampling"]
    assert fp.sections(sampling) == 5                      # 6 s at 30 fps, window 9: 1 + 5 * 36 = 181 frames
    assert fp.denoising_calls(sampling) == 5 * 25
    assert fp.forwards_per_step(sampling) == 1            # distilled guidance, true CFG 1
    with pytest.raises(ValueError, match="1 \\+ sections"):
        fp.settings({"sampling": {"num_frames": 180}})


def test_wan_rejects_frame_counts_the_vae_cannot_make():
    with pytest.raises(ValueError, match="4k\\+1"):
        get_baseline("wan2.1").settings({"sampling": {"num_frames": 80}})
    assert get_baseline("wan2.1").forwards_per_step({"guidance_scale": 5.0}) == 2


def test_image_sizing():
    # The official float arithmetic: sqrt(399360 * 480/832) = 479.99999999999994 -> 29 latent pairs -> 464.
    assert max_area_size(832, 480, 480 * 832, 16) == (464, 832)
    assert max_area_size(480, 832, 480 * 832, 16) == (832, 480)   # sqrt(399360 / (832/480)) is 480.0 here
    assert max_area_size(768, 512, 480 * 832, 16) == (512, 768)   # the authors' Wan2.1 video (../shared/videos)
    h, w = max_area_size(1280, 720, 480 * 832, 16)
    assert h % 16 == w % 16 == 0 and h * w <= 480 * 832 and abs(w / h - 16 / 9) < 0.05
    # Official Wan2.1: size = 16 * floor(sqrt(480*832 * h/w) / 16); 1000x576: sqrt(230031.36) = 479.62 -> 464
    assert max_area_size(1000, 576, 480 * 832, 16) == (464, 832)
    assert bucket_size(832, 480, 640) == (480, 832)
    assert bucket_size(480, 832, 640) == (832, 480)
    assert bucket_size(1000, 1000, 640) == (640, 608)      # a tie: the later bucket, as the official loop's <=
    fixed = {"mode": "fixed", "height": 544, "width": 960, "follow_orientation": True}
    assert target_size(fixed, 1920, 1080) == (544, 960)
    assert target_size(fixed, 1080, 1920) == (960, 544)
    with pytest.raises(ValueError, match="model.sizing.mode"):
        target_size({"mode": "stretch"}, 10, 10)


def test_missing_pretrained_weights_give_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    fp = get_baseline("framepack")
    with pytest.raises(WeightsNotFoundError) as err:
        fp.build(fp.settings({"weights": "pretrained"}))
    message = str(err.value)
    for key, repo in (("checkpoint", "hunyuanvideo-community/HunyuanVideo"), ("transformer", "lllyasviel/FramePackI2V_HY"),
                      ("image_encoder", "lllyasviel/flux_redux_bfl")):
        assert f"hf download {repo} --local-dir DIR    # then model.{key}=DIR" in message
    assert "model=framepack-tiny" in message and "weights=tiny" not in message


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="model.weights"):
        get_baseline("wan2.1").settings({"weights": "huge"})
    with pytest.raises(ValueError, match="model.baseline: unknown value"):
        get_baseline("sora")


@pytest.mark.parametrize("size", [(1000, 1000), (832, 480), (480, 832), (1280, 720), (720, 1280), (512, 768),
                                  (777, 555), (600, 610), (2000, 900)])
def test_bucket_is_the_official_nearest_with_ties_to_the_later(size):
    width, height = size
    metrics = [abs(height * bw - width * bh) for bh, bw in FRAMEPACK_BUCKETS_640]
    last_best = max(i for i, m in enumerate(metrics) if m == min(metrics))
    assert bucket_size(width, height, 640) == FRAMEPACK_BUCKETS_640[last_best]


def test_framepack_crop_rounds_the_box_half_to_even():
    from PIL import Image

    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (480, 835, 3), dtype=np.uint8))
    out = framepack_fit_image(image, 480, 832)   # overhang 3: box left 1.5 -> 2 (floor would give 1)
    assert np.array_equal(np.asarray(out), np.asarray(image)[:, 2:834])
    assert framepack_fit_image(image.crop((0, 0, 832, 480)), 480, 832).tobytes() == image.crop((0, 0, 832, 480)).tobytes()


def test_paper_generation_settings():
    wan, cfg5 = model_cfg("wan2.1"), model_cfg("wan2.1-cfg5")
    assert wan.sampling.guidance_scale == 1.0 and cfg5.sampling.guidance_scale == 5.0 and cfg5.name == "wan2.1-cfg5"
    baseline = baseline_for(wan)
    assert baseline.forwards_per_step(wan.sampling) == 1 and baseline.forwards_per_step(cfg5.sampling) == 2
    for name in ("framepack", "framepack-f1", "framepack-tiny", "framepack-f1-tiny"):
        cfg = model_cfg(name)
        assert cfg.seed == 31337 and cfg.seed_mode == "fixed" and cfg.sampling.scheduler == "framepack_unipc"
        assert to_plain(cfg.teacache) == {"enabled": True, "rel_l1_thresh": 0.15}
    assert (to_plain(wan.video), to_plain(model_cfg("framepack").video)) == (
        {"crf": 10, "uint8": "truncate"}, {"crf": 25, "uint8": "truncate"})   # imageio quality 8 / 5
    with pytest.raises(ValueError, match="model.video.uint8"):
        get_baseline("wan2.1").settings({"video": {"uint8": "floor"}})
    with pytest.raises(ValueError, match="model.seed_mode"):
        get_baseline("framepack").settings({"seed_mode": "random"})
    with pytest.raises(ValueError, match="model.teacache"):
        get_baseline("framepack").settings({"sampling": {"true_cfg_scale": 3.0}})
    with pytest.raises(ValueError, match="model.sampling.scheduler"):
        get_baseline("framepack").settings({"sampling": {"scheduler": "unipc"}})
