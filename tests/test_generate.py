"""Generation stage on the tiny baselines: videos, resume, kill + resume, shards, seeds, ASM, failures."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from omiti2v.context import RunContext
from omiti2v.data import Benchmark, benchmark_from_config
from omiti2v.generate import BadOutputError, parse_shard, resolve_shard, run_generation
from omiti2v.generate.runner import expected_frames, to_uint8
from omiti2v.runs import RunDir, read_jsonl
from omiti2v.video import read_video

REPO = Path(__file__).resolve().parents[1]
TINY = ["wan2.1-tiny", "hunyuan-i2v-tiny", "skyreels-v2-i2v-tiny", "skyreels-v2-df-tiny", "framepack-tiny",
        "framepack-f1-tiny", "easyanimate-tiny"]


def make_cfg(*overrides: str, model: str = "wan2.1-tiny", limit: int = 1):
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[f"model={model}", "asm=none", "data=mini", f"data.limit={limit}",
                                           "device=cpu", *overrides])
    OmegaConf.set_struct(cfg, False)
    return cfg


def generate(cfg, path: Path, benchmark: Benchmark | None = None) -> dict:
    return run_generation(RunContext.from_config(cfg), RunDir(path), benchmark or benchmark_from_config(cfg.data))


def ok_records(path: Path) -> list[dict]:
    return [r for r in read_jsonl(Path(path) / "generation.jsonl") if r["status"] == "ok"]


@pytest.mark.parametrize("model", TINY)
def test_tiny_baseline_writes_decodable_video(model, tmp_path):
    cfg = make_cfg(model=model)
    counts = generate(cfg, tmp_path)
    assert counts["ok"] == 1 and counts["failed"] == 0
    frames, info = read_video(tmp_path / "videos" / "mini_0.mp4")
    assert info.num_frames == expected_frames(cfg.model) == len(frames)
    assert info.fps == pytest.approx(cfg.model.fps)
    assert frames.std() > 0  # a real decoded picture, not a constant
    sidecar = json.loads((tmp_path / "videos" / "mini_0.json").read_text())
    (record,) = ok_records(tmp_path)
    assert record == sidecar
    assert sidecar["settings"]["frames"] == info.num_frames
    assert sidecar["config_hash"].startswith("sha256:") and sidecar["timings"]["pipeline"] > 0
    from omiti2v.runs import sample_seed

    base = cfg.seed if cfg.model.get("seed") is None else cfg.model.seed
    expected = base if cfg.model.get("seed_mode") == "fixed" else sample_seed(base, "mini_0")
    assert sidecar["seed"] == expected and sidecar["base_seed"] == base
    teacache = sidecar["teacache"]
    if model.startswith("framepack"):  # TeaCache stays on in the tiny variants: one call per step and section
        assert teacache["computed"] + teacache["skipped"] == cfg.model.sampling.num_inference_steps * len(teacache["sections"])
        assert all(s[0] == s[-1] == "C" for s in teacache["sections"])
    else:
        assert teacache is None


def test_rerun_skips_finished_samples(tmp_path):
    cfg = make_cfg(limit=2)
    assert generate(cfg, tmp_path)["ok"] == 2
    stamp = (tmp_path / "videos" / "mini_0.mp4").stat().st_mtime_ns
    again = generate(cfg, tmp_path)
    assert (again["skipped"], again["ok"]) == (2, 0)
    assert (tmp_path / "videos" / "mini_0.mp4").stat().st_mtime_ns == stamp
    assert len(ok_records(tmp_path)) == 2


def test_a_changed_configuration_never_mixes_into_finished_videos(tmp_path):
    from omiti2v.generate.runner import ConfigMismatchError

    assert generate(make_cfg(limit=2), tmp_path)["ok"] == 2
    # Memory options do not change the videos: resuming with them is fine.
    assert generate(make_cfg("model.memory.vae_tiling=true", limit=2), tmp_path)["skipped"] == 2
    with pytest.raises(ConfigMismatchError, match=r"2 finished video\(s\) \(mini_0, mini_1\).*variant=-<name>"):
        generate(make_cfg("asm=scalar", "asm.gamma_k=1.5", limit=2), tmp_path)
    assert len(ok_records(tmp_path)) == 2 and not (tmp_path / "videos" / "mini_2.mp4").exists()
    assert make_cfg("variant=-gammak1.5").run_name == "mini/wan2.1-tiny/none-paper-gammak1.5"


def test_lost_log_line_is_restored_from_the_sidecar(tmp_path):
    cfg = make_cfg(limit=2)
    generate(cfg, tmp_path)
    log = tmp_path / "generation.jsonl"
    log.write_text(log.read_text().splitlines()[0] + "\n")  # as if killed after the sidecar, before the log
    counts = generate(cfg, tmp_path)
    assert counts["restored"] == 1 and counts["ok"] == 0
    assert sorted(r["sample_id"] for r in ok_records(tmp_path)) == ["mini_0", "mini_1"]


def test_same_seed_same_frames_other_seed_other_frames(tmp_path):
    """The generated frames (frames_sha256) are exact; the encoded videos agree within libx264's run-to-run noise."""
    cfg = make_cfg()
    generate(cfg, tmp_path / "a")
    generate(cfg, tmp_path / "b")
    generate(make_cfg("seed=7"), tmp_path / "c")
    frames = [ok_records(tmp_path / r)[0]["frames_sha256"] for r in "abc"]
    assert frames[0] == frames[1] != frames[2]
    a, b, c = (read_video(tmp_path / r / "videos" / "mini_0.mp4")[0].astype(int) for r in "abc")
    assert np.abs(a - b).mean() < 0.5 < np.abs(a - c).mean()


def test_asm_changes_the_video_from_the_same_seed(tmp_path):
    generate(make_cfg(), tmp_path / "off")
    generate(make_cfg("asm=scalar", "schedule=all"), tmp_path / "on")
    off, on = (read_video(tmp_path / r / "videos" / "mini_0.mp4")[0] for r in ("off", "on"))
    assert off.shape == on.shape and np.abs(off.astype(int) - on).mean() > 0.5
    (rec,) = ok_records(tmp_path / "on")
    assert rec["asm"] == "scalar"


def test_failing_sample_is_recorded_and_the_rest_finish(tmp_path):
    cfg = make_cfg(limit=3)
    bench = benchmark_from_config(cfg.data)
    broken = dataclasses.replace(bench.samples[1], image_path=tmp_path / "no-such-image.png")
    bench = Benchmark(bench.root, (bench.samples[0], broken, bench.samples[2]), bench.source)
    counts = generate(cfg, tmp_path / "run", bench)
    assert (counts["ok"], counts["failed"]) == (2, 1)
    records = list(read_jsonl(tmp_path / "run" / "generation.jsonl"))
    (failed,) = [r for r in records if r["status"] == "failed"]
    assert failed["sample_id"] == broken.id and "no-such-image" in failed["error"] and failed["video"] is None
    assert not (tmp_path / "run" / "videos" / f"{broken.id}.mp4").exists()
    retry = generate(cfg, tmp_path / "run", bench)  # failed samples are retried, finished ones skipped
    assert (retry["skipped"], retry["failed"]) == (2, 1)


def test_nan_frames_are_a_failure():
    frames = np.zeros((3, 8, 8, 3), dtype=np.float32)
    frames[1, 2, 2, 0] = np.nan
    with pytest.raises(BadOutputError, match="1 of 3 frames"):
        to_uint8(frames)
    assert to_uint8(np.ones((1, 2, 2, 3))).max() == 255
    half = np.full((1, 1, 1, 3), 0.999 / 255 * 128, dtype=np.float32)   # 127.87 levels
    assert (to_uint8(half)[0, 0, 0, 0], to_uint8(half, "truncate")[0, 0, 0, 0]) == (128, 127)


def test_shard_sources_and_assignment():
    ids = [f"s{k}" for k in range(11)]
    parts = [parse_shard(f"{r}/4").select(ids) for r in range(4)]
    assert sorted(sum(parts, [])) == sorted(ids)
    assert all(set(p).isdisjoint(q) for i, p in enumerate(parts) for q in parts[i + 1:])
    assert resolve_shard(None, {"RANK": "2", "WORLD_SIZE": "3"}).select(ids) == ["s2", "s5", "s8"]
    assert str(resolve_shard(None, {"SLURM_PROCID": "1", "SLURM_NTASKS": "2"})) == "1/2"
    assert resolve_shard("0/2", {"RANK": "1", "WORLD_SIZE": "2"}).source == "config"
    assert str(resolve_shard(None, {})) == "0/1"
    for bad in ("2/2", "x", "1/0"):
        with pytest.raises(ValueError, match="shard"):
            parse_shard(bad)


def test_shards_make_the_whole_set_once(tmp_path):
    for rank in range(2):
        cfg = make_cfg(limit=3)
        cfg.shard = f"{rank}/2"
        generate(cfg, tmp_path)
    ids = [r["sample_id"] for r in ok_records(tmp_path)]
    assert sorted(ids) == ["mini_0", "mini_1", "mini_2"]
    assert sorted(p.name for p in (tmp_path / "videos").glob("*.mp4")) == [f"mini_{k}.mp4" for k in range(3)]


@pytest.mark.slow
def test_sigkill_then_resume_gives_the_complete_set(tmp_path):
    run = tmp_path / "run"
    cmd = [sys.executable, str(REPO / "runners" / "generate.py"), "model=wan2.1-tiny", "asm=none", "data=mini",
           "data.limit=4", "device=cpu", f"run_dir={run}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not (run / "videos" / "mini_0.json").exists():
            assert proc.poll() is None, "generation exited before writing a sample"
            assert time.time() < deadline, "no sample finished within 120 s"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert len(list((run / "videos").glob("*.mp4"))) < 4, "the kill came too late to test resuming"
    resumed = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, f"resume exited {resumed.returncode}: {resumed.stderr[-3000:]}"
    ids = [r["sample_id"] for r in ok_records(run)]
    assert sorted(ids) == [f"mini_{k}" for k in range(4)]  # each once: no duplicates
    for k in range(4):
        frames, info = read_video(run / "videos" / f"mini_{k}.mp4")
        assert info.num_frames == 5 and len(frames) == 5
    assert not [p for p in (run / "videos").iterdir() if p.name.startswith(".")]  # no half-written temp files
