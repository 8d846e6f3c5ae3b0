"""The Hydra tree: every model x asm x schedule composes and resolves, and run folders are named as documented."""

import itertools
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

CONF = Path(__file__).resolve().parents[1] / "conf"


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


MODELS, ASMS, SCHEDULES = options("model"), options("asm"), options("schedule")


def test_groups_hold_every_baseline_and_variant():
    baselines = {"wan2.1", "hunyuan-i2v", "skyreels-v2-i2v", "skyreels-v2-df", "framepack", "framepack-f1", "easyanimate"}
    assert baselines | {f"{b}-tiny" for b in baselines} <= set(MODELS)
    assert {"none", "scalar", "energy"} <= set(ASMS)
    assert {"paper", "all", "early", "mid", "late", "blocks-only", "steps-only"} <= set(SCHEDULES)
    assert {"mini", "omiti2v", "local"} <= set(options("data"))
    assert {"tiny", "qwen2.5-vl-32b"} <= set(options("judge")) and {"tiny", "vbench"} <= set(options("scorer"))


def test_every_combination_composes_and_resolves():
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        for model, asm, schedule in itertools.product(MODELS, ASMS, SCHEDULES):
            cfg = compose("config", overrides=[f"model={model}", f"asm={asm}", f"schedule={schedule}"])
            resolved = OmegaConf.to_container(cfg, resolve=True)
            assert resolved["model"]["name"] == model
            assert resolved["run_name"] == f"omiti2v/{model}/{resolved['asm']['name']}-{resolved['schedule']['name']}"
            assert resolved["model"]["weights"] in ("pretrained", "random", "tiny")
            assert resolved["model"]["fps"] > 0 and resolved["model"]["asm_preset"]


def test_tiny_variants_inherit_their_baseline():
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        for model in (m for m in MODELS if m.endswith("-tiny")):
            tiny = compose("config", overrides=[f"model={model}"]).model
            base = compose("config", overrides=[f"model={model.removesuffix('-tiny')}"]).model
            assert tiny.weights == "tiny" and base.weights == "pretrained"
            assert (tiny.baseline, tiny.checkpoint, tiny.asm_preset, tiny.fps) == (base.baseline, base.checkpoint, base.asm_preset, base.fps)


def test_reference_settings_of_the_paper_models():
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        wan = compose("config", overrides=["model=wan2.1"]).model
        assert (wan.sampling.num_frames, wan.sampling.num_inference_steps, wan.fps, wan.sizing.max_area) == (81, 40, 16, 480 * 832)
        fp = compose("config", overrides=["model=framepack"]).model
        f1 = compose("config", overrides=["model=framepack-f1"]).model
        assert (fp.sampling.sampling_type, fp.fps, fp.seed, fp.sampling.num_inference_steps) == ("inverted_anti_drifting", 30, 31337, 25)
        assert (f1.sampling.sampling_type, f1.fps, f1.asm_preset) == ("vanilla", 24, "framepack-f1")


def test_smoke_config_is_offline_and_marked():
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("smoke")
    assert cfg.smoke is True and cfg.data.source == "mini" and cfg.model.weights == "tiny"
    assert cfg.judge.model == "tiny" and cfg.scorer.name == "tiny"
    assert any("meaningless" in n for n in cfg.notes)


def test_sweep_over_models_and_asm_in_multirun(tmp_path):
    """`-m model=a,b asm=none,scalar` gives one run folder per point (summary stage only, on the mini set; each
    folder holds one judged sample, since a summary of nothing is an error)."""
    import json
    import subprocess
    import sys

    repo = CONF.parent
    for point in ("wan2.1-tiny/none", "wan2.1-tiny/scalar", "framepack-tiny/none", "framepack-tiny/scalar"):
        run = tmp_path / "runs" / "mini" / f"{point}-paper"
        (run / "videos").mkdir(parents=True)
        (run / "videos" / "mini_0.mp4").write_bytes(b"")
        (run / "judge.jsonl").write_text(json.dumps({"sample_id": "mini_0", "question_id": "q1", "mode": "official",
                                                     "correct": True, "error": None}) + "\n")
    proc = subprocess.run(
        [sys.executable, str(repo / "runners" / "summary.py"), "-m", "--config-name", "smoke",
         "model=wan2.1-tiny,framepack-tiny", "asm=none,scalar", f"results_root={tmp_path}"],
        capture_output=True, text=True, cwd=repo, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summaries = sorted(p.relative_to(tmp_path / "runs").as_posix() for p in tmp_path.glob("runs/**/summary.json"))
    assert summaries == [
        "mini/framepack-tiny/none-paper/summary.json",
        "mini/framepack-tiny/scalar-paper/summary.json",
        "mini/wan2.1-tiny/none-paper/summary.json",
        "mini/wan2.1-tiny/scalar-paper/summary.json",
    ]


@pytest.mark.parametrize("bad", ["model=nonexistent", "asm=gamma"])
def test_unknown_option_is_a_clear_hydra_error(bad):
    from hydra.errors import MissingConfigException

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"), pytest.raises(MissingConfigException):
        compose("config", overrides=[bad])


def test_slurm_launcher_config_composes():
    """The documented submitit launcher resolves with the harness's job name and GPU request."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=["hydra/launcher=slurm", "model=framepack"], return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert launcher.gpus_per_node == 1 and launcher.tasks_per_node == 1 and launcher.timeout_min == 1440
