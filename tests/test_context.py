"""The run's settings resolved once (omiti2v.context.RunContext) and what the summary reads from the records:
the base seed every record and the summary agree on, the multi-GPU layout and the judge settings derived once per
run, the judge mode a summary reports taken from the judge records whatever the config of the invocation says."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from test_summary import judge_records

from omiti2v.context import RunContext
from omiti2v.data import load_benchmark
from omiti2v.pipeline import run_stages
from omiti2v.profile import deviations
from omiti2v.runs import RunDir, append_jsonl, read_jsonl

REPO = Path(__file__).resolve().parents[1]


def smoke_cfg(results: Path, *overrides: str):
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("smoke", overrides=[f"results_root={results}", "device=cpu", "preflight=false", *overrides])
    OmegaConf.set_struct(cfg, False)
    return cfg


def plain_sample_seed(base: int, sample_id: str) -> int:
    """The per-sample seed rule written out again: the low 31 bits of sha256("<base>:<id>"), little-endian."""
    return int.from_bytes(hashlib.sha256(f"{base}:{sample_id}".encode()).digest()[:4], "little") % 2**31


@pytest.mark.parametrize(("overrides", "expected"), [
    (["++model.seed=0", "seed=5"], 0),  # 0 is the model's seed, not "unset"
    (["seed=5"], 5),  # Wan has no seed of its own: the run's
    (["model=framepack-tiny", "seed=5"], 31337),  # FramePack's own, whatever the run's
    (["model=framepack-tiny", "model.seed=null", "seed=7"], 7),
])
def test_the_context_resolves_the_base_seed_once(tmp_path, overrides, expected):
    ctx = RunContext.from_config(smoke_cfg(tmp_path, *overrides))
    assert ctx.base_seed == expected and ctx.seed == int(ctx.cfg.seed)
    if ctx.baseline.family == "framepack":  # the paper profile's deviation names the same seed
        lines = [d for d in deviations(ctx.cfg) if d.startswith("FramePack seed")]
        assert lines == ([] if expected == 31337 else
                         [f"FramePack seed_mode fixed, seed {expected}; official: 31337 for every sample"])
    with pytest.raises(dataclasses.FrozenInstanceError):
        ctx.base_seed = 1  # type: ignore[misc]


def test_the_context_resolves_layout_device_and_judge(tmp_path, monkeypatch):
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    ctx = RunContext.from_config(smoke_cfg(tmp_path, "judge.mode=both", "++parallel.context=2"))
    assert (ctx.layout.rank, ctx.layout.world, ctx.layout.context, ctx.layout.writer) == (3, 4, 2, False)
    assert str(ctx.layout.shard) == "1/2" and ctx.parallel["context"] == 2 and ctx.device == "cpu"
    assert ctx.judge.modes == ("parity", "fast") and ctx.judge.parity_and_fast
    alone = ctx.alone()
    assert (alone.layout.rank, alone.layout.world) == (0, 1) and alone.judge is ctx.judge
    official = RunContext.from_config(smoke_cfg(tmp_path, "judge.mode=official")).judge
    assert official.modes == ("official",) and not official.parity_and_fast


def test_the_summary_reports_the_judge_mode_its_records_hold(tmp_path):
    """Records written in official mode, a summary invoked with judge.mode=both: the summary reports official and
    scores the official verdicts (with the config's mode, parity, it found no verdict and scored every answer 0)."""
    mini = load_benchmark("mini")
    cfg = smoke_cfg(tmp_path, "judge.mode=both")
    run = RunDir(Path(cfg.run_dir))
    run.videos.mkdir(parents=True)
    for sample in mini:
        run.video(sample.id).write_bytes(b"")
    append_jsonl(run.judge_log, judge_records(mini, lambda s, q: True, mode="official"))
    run_stages(cfg, ["summary"])
    summary = json.loads(run.summary.read_text())
    assert summary["models"]["judge_mode"] == "official"
    assert summary["metrics"]["overall"]["value"] == 100.0 and summary["failures"]["judge"] == []


@pytest.mark.slow
def test_a_model_seed_of_0_and_a_run_seed_of_5_agree_in_every_record_and_the_summary(tmp_path, monkeypatch):
    """The whole chain on tiny models, one sample's image unreadable: each generation record (ok and failed) and
    sidecar, the run's config.yaml and the summary carry base seed 0 (the model's), the summary's bootstrap seed
    is the run's 5; the layout and the judge's settings are derived once for the run (before, generation resolved
    the layout again and the judge parsed its settings twice)."""
    from omiti2v.data.records import Sample
    from omiti2v.generate import parallel
    from omiti2v.judge.stage import JudgeSettings

    load_image = Sample.load_image

    def unreadable_mini_1(sample):
        if sample.id == "mini_1":
            raise OSError(f"{sample.image_path}: cannot identify image file")
        return load_image(sample)

    monkeypatch.setattr(Sample, "load_image", unreadable_mini_1)

    calls = {"layout": 0, "judge": 0}
    resolve_layout, from_config = parallel.resolve_layout, JudgeSettings.from_config.__func__

    def counted_layout(*args, **kwargs):
        calls["layout"] += 1
        return resolve_layout(*args, **kwargs)

    def counted_judge(cls, judge):
        calls["judge"] += 1
        return from_config(cls, judge)

    monkeypatch.setattr(parallel, "resolve_layout", counted_layout)
    monkeypatch.setattr("omiti2v.context.resolve_layout", counted_layout)
    monkeypatch.setattr(JudgeSettings, "from_config", classmethod(counted_judge))

    cfg = smoke_cfg(tmp_path, "++model.seed=0", "seed=5", "data.limit=2", "model.seed_mode=per_sample")
    run = run_stages(cfg)
    assert calls == {"layout": 1, "judge": 1}
    records = list(read_jsonl(run.generation_log))
    assert sorted((r["sample_id"], r["status"]) for r in records) == [("mini_0", "ok"), ("mini_1", "failed")]
    for rec in records + [json.loads(run.sidecar("mini_0").read_text())]:
        assert rec["base_seed"] == 0 and rec["seed"] == plain_sample_seed(0, rec["sample_id"])
    saved = OmegaConf.load(run.config)
    assert (saved.model.seed, saved.seed) == (0, 5)
    summary = json.loads(run.summary.read_text())
    assert summary["seeds"] == {"base": 0, "bootstrap": 5} and summary["failures"]["generation"] == ["mini_1"]
    assert {r["mode"] for r in read_jsonl(run.judge_log)} == {summary["models"]["judge_mode"]} == {"official"}
