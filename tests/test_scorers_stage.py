"""The score stage: smoke config end to end, one decode per video, resume, missing videos, missing weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from omiti2v.context import RunContext
from omiti2v.data import load_benchmark
from omiti2v.runs import RunDir, read_jsonl
from omiti2v.scorers import MissingWeightsError, run_scorers
from omiti2v.scorers import stage as stage_module
from omiti2v.video import write_video

REPO = Path(__file__).resolve().parents[1]
RECORD_KEYS = {"sample_id", "metric", "value", "details", "backend", "comparable", "error", "video_sha256"}


def _config(tmp_path, name="smoke", *overrides):
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        return compose(name, overrides=[f"run_dir={tmp_path / 'run'}", "device=cpu", *overrides])


def _moving_video(path, speed: int, frames: int = 9, size: tuple[int, int] = (64, 96)):
    rng = np.random.default_rng(speed)
    base = (rng.random((*size, 3)) * 255).astype(np.uint8)
    write_video(path, np.stack([np.roll(base, speed * t, axis=1) for t in range(frames)]), 8.0)


def test_smoke_scorers_resume_and_record_failures(tmp_path, monkeypatch):
    cfg = _config(tmp_path, "smoke", "scorer.aspect_resize.mode=none",  # native size: one decode per video
                  "scorer.metrics=[dynamic_degree,aesthetic_quality]")
    assert cfg.scorer.name == "tiny" and cfg.scorer.flow_backend == "opencv_dis"
    bench = load_benchmark("mini").filter(limit=3)
    run = RunDir(cfg.run_dir)
    ids = bench.ids
    _moving_video(run.video(ids[0]), 0)
    _moving_video(run.video(ids[1]), 12)
    decodes = []
    real_read = stage_module.read_video
    monkeypatch.setattr(stage_module, "read_video", lambda *a, **k: decodes.append(a[0]) or real_read(*a, **k))

    run_scorers(RunContext.from_config(cfg), run, bench)
    recs = list(read_jsonl(run.scores_log))
    assert len(recs) == 6 and all(set(r) == RECORD_KEYS for r in recs)
    assert sorted(p.stem for p in decodes) == sorted(ids[:2])  # one decode per video for both metrics
    by = {(r["sample_id"], r["metric"]): r for r in recs}
    assert by[(ids[0], "dynamic_degree")]["value"] == 0.0 and by[(ids[1], "dynamic_degree")]["value"] == 1.0
    assert all(r["comparable"] is False for r in recs)
    assert by[(ids[0], "dynamic_degree")]["backend"] == "opencv_dis"
    assert np.isfinite(by[(ids[0], "aesthetic_quality")]["value"])
    assert by[(ids[0], "aesthetic_quality")]["details"]["frames"] == 9
    assert by[(ids[2], "dynamic_degree")]["value"] is None and "missing" in by[(ids[2], "dynamic_degree")]["error"]

    run_scorers(RunContext.from_config(cfg), run, bench)  # resume: only the failed sample is retried (and fails again)
    again = list(read_jsonl(run.scores_log))[6:]
    assert sorted((r["sample_id"], r["error"] is None) for r in again) == [(ids[2], False)] * 2

    _moving_video(run.video(ids[2]), 3)
    decodes.clear()
    run_scorers(RunContext.from_config(cfg), run, bench)
    last = list(read_jsonl(run.scores_log))[8:]
    assert [p.stem for p in decodes] == [ids[2]]
    assert sorted(r["metric"] for r in last) == ["aesthetic_quality", "dynamic_degree"] and all(r["error"] is None for r in last)

    run_scorers(RunContext.from_config(cfg), run, bench)  # all done: nothing appended
    assert len(list(read_jsonl(run.scores_log))) == 10


def test_switching_flow_backend_rescores(tmp_path):
    cfg = _config(tmp_path, "smoke", "scorer.metrics=[dynamic_degree]")
    bench = load_benchmark("mini").filter(limit=1)
    run = RunDir(cfg.run_dir)
    _moving_video(run.video(bench.ids[0]), 2, frames=3, size=(128, 128))  # RAFT needs >= 128 px
    run_scorers(RunContext.from_config(cfg), run, bench)
    run_scorers(RunContext.from_config(cfg), run, bench)  # same backend: skipped
    assert len(list(read_jsonl(run.scores_log))) == 1
    cfg.scorer.flow_backend = "raft"
    cfg.scorer.dynamic_degree.raft_weights = "random"
    run_scorers(RunContext.from_config(cfg), run, bench)
    recs = list(read_jsonl(run.scores_log))
    assert [r["backend"] for r in recs] == ["opencv_dis", "raft_large:random:float32"]
    assert recs[1]["error"] is None and len(recs[1]["details"]["pair_scores"]) == 2


def test_missing_weights_are_listed_in_one_error(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    weights = tmp_path / "weights"
    cfg = _config(tmp_path, "config", "data=mini", f"scorer.weights_dir={weights}")
    bench = load_benchmark("mini").filter(limit=1)
    run = RunDir(cfg.run_dir)
    _moving_video(run.video(bench.ids[0]), 1)
    with pytest.raises(MissingWeightsError) as err:
        run_scorers(RunContext.from_config(cfg), run, bench)
    msg = str(err.value)
    assert "4 scorer weight file(s) missing" in msg
    for expected in ("https://download.pytorch.org/models/raft_large_C_T_V1-22a6c225.pth",
                     str(weights / "raft_large_C_T_V1-22a6c225.pth"),
                     "openai/clip-vit-large-patch14", str(weights / "clip-vit-large-patch14"),
                     "sa_0_4_vit_l_14_linear.pth?raw=true", str(weights / "sa_0_4_vit_l_14_linear.pth"),
                     "musiq_spaq_ckpt-358bb6af.pth", "OMITI2V_WEIGHTS"):
        assert expected in msg
    assert not run.scores_log.exists()  # failed before any work

    (weights / "sa_0_4_vit_l_14_linear.pth").parent.mkdir(parents=True)
    (weights / "sa_0_4_vit_l_14_linear.pth").write_bytes(b"")
    with pytest.raises(MissingWeightsError, match="3 scorer weight file"):
        run_scorers(RunContext.from_config(cfg), run, bench)
