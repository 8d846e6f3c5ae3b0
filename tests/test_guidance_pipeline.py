"""Guidance through the real tiny pipelines and the generation stage: the adapter's CFG is the pipeline's own, each
method runs its planned forwards, method none leaves the paper path as it was, and the config rule refuses what a
baseline cannot take with one line."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from omiti2v.config_check import config_violations
from omiti2v.data import benchmark_from_config
from omiti2v.generate.runner import Generator, to_uint8
from omiti2v.guidance import GuidanceConfig, apply_guidance, forwards_per_step
from omiti2v.models import baseline_for
from omiti2v.seeds import base_seed

REPO = Path(__file__).resolve().parents[1]


def make_cfg(*overrides: str, config: str = "smoke"):
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(config, overrides=["data.limit=1", "device=cpu", *overrides])
    OmegaConf.set_struct(cfg, False)
    return cfg


def pipeline_and_call(model: str = "wan2.1-tiny"):
    cfg = make_cfg(f"model={model}")
    baseline = baseline_for(cfg.model)
    settings = baseline.settings(cfg.model)
    pipe = baseline.build(settings)
    pipe.set_progress_bar_config(disable=True)
    sample = next(iter(benchmark_from_config(cfg.data)))
    image, height, width = baseline.prepare_image(sample.load_image(), settings)
    kwargs = baseline.call_kwargs(pipe, image, sample.prompt, height, width, settings)
    return pipe, {**kwargs, "output_type": "latent"}, settings


@pytest.fixture(scope="module")
def wan_pipeline():
    return pipeline_and_call()


def sampled(pipe, kwargs, handle=None) -> torch.Tensor:
    kwargs = {**kwargs, "generator": torch.Generator("cpu").manual_seed(3)}
    if handle is not None:
        kwargs = handle.prepare(pipe, kwargs)
    return pipe(**kwargs).frames


def test_adapter_cfg_is_the_pipelines_own_cfg(wan_pipeline):
    pipe, kwargs, _ = wan_pipeline
    own = sampled(pipe, {**kwargs, "guidance_scale": 5.0, "negative_prompt": "blurry"})
    with apply_guidance(pipe, GuidanceConfig("cfg", 5.0, negative_prompt="blurry").resolved(1.0)) as handle:
        adapted = sampled(pipe, kwargs, handle)
        assert handle.forwards == 2 * kwargs["num_inference_steps"]
    assert torch.equal(adapted, own)
    assert not torch.equal(adapted, sampled(pipe, kwargs))  # guidance 1.0: another video


@pytest.mark.parametrize(("method", "strength", "settings"), [
    ("cfg-zero-star", 4.0, {}), ("apg", 4.0, {}), ("stg", 1.0, {"blocks": (1,)}), ("pag", 1.0, {"blocks": (1,)}),
    ("alg", 0.5, {"cfg_scale": 5.0}),
])
def test_every_method_runs_its_planned_forwards_in_the_pipeline(wan_pipeline, method, strength, settings):
    pipe, kwargs, _ = wan_pipeline
    steps = kwargs["num_inference_steps"]
    config = GuidanceConfig(method, strength, **settings).resolved(1.0)
    with apply_guidance(pipe, config) as handle:
        video = sampled(pipe, kwargs, handle)
        assert handle.forwards == forwards_per_step(config, steps) * steps
        assert handle.state.num_steps is None  # diffusers reset the hook at the end of the call
    assert torch.isfinite(video).all() and not torch.equal(video, sampled(pipe, kwargs))


def test_skyreels_takes_cfg_and_alg():
    pipe, kwargs, settings = pipeline_and_call("skyreels-v2-i2v-tiny")
    own = sampled(pipe, {**kwargs, "guidance_scale": 5.0})
    with apply_guidance(pipe, GuidanceConfig("cfg", 5.0).resolved(settings["sampling"]["guidance_scale"])) as handle:
        assert torch.equal(sampled(pipe, kwargs, handle), own)
    config = GuidanceConfig("alg", 0.5, cfg_scale=5.0).resolved(1.0)
    with apply_guidance(pipe, config) as handle:
        assert torch.isfinite(sampled(pipe, kwargs, handle)).all()
        assert handle.forwards == forwards_per_step(config, kwargs["num_inference_steps"]) * kwargs["num_inference_steps"]


def test_both_wan22_experts_are_guided():
    pipe, kwargs, settings = pipeline_and_call("wan2.2-tiny")
    assert settings["sampling"]["guidance_scale_2"] > 1  # the pipeline's own CFG, switched off by prepare
    config = GuidanceConfig("cfg", 3.0).resolved(settings["sampling"]["guidance_scale"])
    calls = {"transformer": 0, "transformer_2": 0}
    hooks = [getattr(pipe, name).register_forward_pre_hook(lambda *a, n=name: calls.__setitem__(n, calls[n] + 1))
             for name in calls]
    try:
        with apply_guidance(pipe, config) as handle:
            sampled(pipe, kwargs, handle)
            assert handle.forwards == 2 * kwargs["num_inference_steps"]
    finally:
        for hook in hooks:
            hook.remove()
    assert calls["transformer"] > 0 and calls["transformer_2"] > 0  # one call per step, each expert in its steps
    assert sum(calls.values()) == kwargs["num_inference_steps"]


def frames_sha(frames) -> str:
    return "sha256:" + hashlib.sha256(np.ascontiguousarray(frames).tobytes()).hexdigest()


def test_without_guidance_the_paper_path_is_the_plain_pipeline_call(tmp_path):
    """Method none installs nothing and changes no call argument: the generation stage's frames are those of the
    pipeline called as before the guidance group existed (ASM applied, the model's own call, same seed)."""
    from omiti2v.asm import ASMConfig, apply_asm
    from omiti2v.runs import RunDir, to_plain

    unset, explicit = make_cfg(), make_cfg("guidance=none")
    assert unset.run_name == explicit.run_name == "mini/wan2.1-tiny/scalar-paper"
    baseline = baseline_for(unset.model)
    settings = baseline.settings(unset.model)
    generator = Generator(unset, baseline, settings, "cpu", base_seed(unset, settings))
    assert generator.guidance is None and not hasattr(generator.pipe.transformer, "_diffusers_hook")
    assert generator.method == {"name": "scalar", "knob": "ASM gamma", "strength": 1.35, "forwards_per_step": 1.0,
                                "guidance": None}
    sample = next(iter(benchmark_from_config(unset.data)))
    record = generator.record(RunDir(tmp_path), sample, "0/1")

    pipe = baseline.build(settings)
    pipe.set_progress_bar_config(disable=True)
    apply_asm(pipe, ASMConfig.from_hydra(settings["asm_preset"], to_plain(unset.asm), to_plain(unset.schedule),
                                         settings["name"]))
    image, height, width = baseline.prepare_image(sample.load_image(), settings)
    kwargs = baseline.call_kwargs(pipe, image, sample.prompt, height, width, settings)
    kwargs["generator"] = torch.Generator("cpu").manual_seed(record["seed"])
    frames = to_uint8(pipe(**kwargs).frames[0], settings["video"]["uint8"])
    assert record["frames_sha256"] == frames_sha(frames)


@pytest.mark.parametrize(("overrides", "line"), [
    (["model=framepack-tiny", "guidance=cfg"], "guidance=cfg: model=framepack-tiny (HunyuanVideoFramepackPipeline) "
     "cannot take it: FramePack samples with distilled guidance"),
    (["model=easyanimate-tiny", "guidance=stg"], "guidance=stg: model=easyanimate-tiny (EasyAnimateInpaintPipeline) "
     "cannot take it: the guidance adapter knows the transformer call of"),
    (["model=skyreels-v2-i2v-tiny", "guidance=pag"], "guidance=pag: model=skyreels-v2-i2v-tiny "
     "(SkyReelsV2ImageToVideoPipeline) cannot take it: diffusers' layer-skip hooks know the blocks of"),
    (["guidance=pag", "generation.compile=regional"], "guidance=pag perturbs blocks with hooks installed around one "
     "pass per step: run it with generation.compile=none"),
    (["guidance=cfg", "guidance.strength=0.5"], "guidance.strength 0.5: the CFG scale w of cfg must be a number >= 1"),
    (["guidance=alg", "guidance.strength=2"], "guidance.strength 2: the low-pass step fraction of alg must be a "
     "number in [0, 1]"),
    (["guidance=alg", "guidance.resize_factor=0"], "guidance.resize_factor 0 must be in (0, 1]"),
])
def test_the_config_rule_refuses_with_one_line(overrides, line):
    assert [v for v in config_violations(make_cfg(*overrides)) if v.startswith(line)] != []


@pytest.mark.slow
def test_a_refused_method_stops_the_runner_before_anything_loads(tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "runners" / "eval.py"), "--config-name", "smoke",
                           f"results_root={tmp_path}", "model=framepack-tiny", "guidance=cfg"],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "FramePack samples with distilled guidance" in errors[0]
    assert not list(tmp_path.rglob("*.mp4")) and not list(tmp_path.rglob("generation.jsonl"))
