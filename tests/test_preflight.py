"""Preflight: with the generator present (a tiny pipeline saved with save_pretrained) and the judge missing, the
run exits 2 before generating anything, naming the judge checkpoint and its key; scorer weights, an unwritable
results root and a full disk are reported in the same message; a stage with nothing left to do loads no model."""

import os
import shutil
import subprocess
import sys
from collections import namedtuple
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from omiti2v import preflight as preflight_module
from omiti2v.data import load_benchmark
from omiti2v.judge import stage as judge_stage
from omiti2v.judge.model import JudgeWeightsError
from omiti2v.models import get_baseline
from omiti2v.pipeline import run_stages
from omiti2v.preflight import PreflightError
from omiti2v.runs import RunDir, append_jsonl

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def saved_generator(tmp_path_factory) -> Path:
    """A Wan2.1-architecture pipeline at toy size, saved as a local checkpoint folder."""
    wan = get_baseline("wan2.1")
    folder = tmp_path_factory.mktemp("wan-local")
    wan.build(wan.settings({"weights": "tiny", "dtype": "float32"})).save_pretrained(folder)
    return folder


@pytest.fixture
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))


def config(*overrides: str):
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose("config", overrides=["data=mini", "device=cpu", *overrides])


def test_missing_judge_stops_the_run_before_generation(saved_generator, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "empty")}
    proc = subprocess.run(
        [sys.executable, str(REPO / "runners" / "eval.py"), "data=mini", "model=wan2.1", f"model.checkpoint={saved_generator}",
         "judge=qwen2.5-vl-7b", "scorer=tiny", "device=cpu", f"results_root={tmp_path}"],
        capture_output=True, text=True, cwd=REPO, timeout=300, env=env,
    )
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [
        "error: preflight: 1 problem(s) before any stage runs",
        "error: judge checkpoint judge.model='Qwen/Qwen2.5-VL-7B-Instruct' is missing: "
        "`hf download Qwen/Qwen2.5-VL-7B-Instruct --local-dir DIR`, then judge.model=DIR",
        "error: (after fixing, rerun; experts can skip these checks with preflight=false)",
    ]
    run = tmp_path / "runs" / "mini" / "wan2.1" / "scalar-paper"
    assert not (run / "videos").exists() and not (run / "generation.jsonl").exists() and "Traceback" not in proc.stderr


def test_every_missing_item_in_one_message(offline, tmp_path, monkeypatch):
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    cfg = config("model=framepack", "scorer=vbench", "scorer.allow_download=false", f"scorer.weights_dir={tmp_path / 'w'}",
                 f"results_root={not_a_dir}/results")
    with pytest.raises(PreflightError) as err:
        run_stages(cfg)
    lines = str(err.value).split("\nerror: ")
    assert lines[0] == "preflight: 9 problem(s) before any stage runs"
    for key in ("model.checkpoint='hunyuanvideo-community/HunyuanVideo'", "model.transformer='lllyasviel/FramePackI2V_HY'",
                "model.image_encoder='lllyasviel/flux_redux_bfl'", "judge.model='Qwen/Qwen2.5-VL-32B-Instruct'"):
        assert sum(key in line and "hf download" in line for line in lines) == 1, key
    scorer_lines = [line for line in lines if line.startswith("scorer weights (scorer.weights_dir / OMITI2V_WEIGHTS)")]
    assert len(scorer_lines) == 4  # RAFT, CLIP ViT-L/14, the LAION head, MUSIQ
    assert any(line.startswith(f"results root {not_a_dir}/results/runs/mini/framepack/scalar-paper is not writable") for line in lines)


def test_disk_estimate_covers_the_planned_videos(saved_generator, offline, tmp_path, monkeypatch):
    cfg = config("model=wan2.1", f"model.checkpoint={saved_generator}", "judge=tiny", "scorer=tiny", f"results_root={tmp_path}")
    run = RunDir(tmp_path / "run")
    need = preflight_module.planned_video_bytes(cfg, run, load_benchmark("mini"))
    # 12 samples x 81 frames at up to 480x832 pixels
    assert 12 * 81 * 300_000 * preflight_module.VIDEO_BYTES_PER_PIXEL < need <= 12 * 81 * 399_360 * preflight_module.VIDEO_BYTES_PER_PIXEL
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(need, 0, need - 1))
    with pytest.raises(PreflightError, match=r"not enough free disk for the planned videos .* about \d+\.\d GB needed"):
        run_stages(cfg, ["generate"])
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(need, 0, need))
    assert preflight_module.preflight(cfg, ["generate"], run.path).ids == load_benchmark("mini").ids


def test_preflight_false_skips_the_checks(offline, tmp_path):
    cfg = config("judge=qwen2.5-vl-7b", f"results_root={tmp_path}")
    with pytest.raises(PreflightError, match="judge.model"):
        run_stages(cfg, ["judge"])
    cfg.preflight = False  # the expert's way: the judge stage starts and its loader is what fails
    with pytest.raises(JudgeWeightsError):
        run_stages(cfg, ["judge"])


def test_judge_not_loaded_when_everything_is_judged(tmp_path, monkeypatch):
    bench = load_benchmark("mini", limit=2)
    run = RunDir(tmp_path / "run")
    cfg = config("judge=tiny", "judge.mode=parity")
    append_jsonl(run.judge_log, [{"sample_id": s.id, "question_id": str(q.id), "mode": "parity", "judge_model": "tiny",
                                  "error": None} for s in bench for q in s.questions])

    def no_loading(*args, **kwargs):
        raise AssertionError("the judge was loaded with nothing to judge")

    monkeypatch.setattr(judge_stage, "load_judge_model", no_loading)
    monkeypatch.setattr("omiti2v.judge.tiny.build_tiny_judge", no_loading)
    judge_stage.run_judge(cfg, run, bench)
    with pytest.raises(AssertionError, match="nothing to judge"):
        judge_stage.run_judge(cfg, run, load_benchmark("mini", limit=3))  # one sample left: loads
