"""`omiti2v rejudge` and `omiti2v judge-agreement` on finished mini runs with two tiny judges of different
families: original records untouched, resume after SIGKILL, unfinished folders refused, the agreement report."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from omiti2v.cli import main as cli_main
from omiti2v.context import RunContext
from omiti2v.data import load_benchmark
from omiti2v.errors import SetupError
from omiti2v.judge.stage import run_judge
from omiti2v.rejudge import UnfinishedRunError, finished_run, judge_config, rejudge
from omiti2v.report.judge_report import build_report, write_report
from omiti2v.runs import RunDir, append_jsonl, atomic_write_text, read_jsonl
from omiti2v.summary import validate_summary, write_summary
from omiti2v.video import write_video

REPO = Path(__file__).resolve().parents[1]
CATEGORIES = ["deletion"]  # 4 samples, 10 questions


def finished_mini_run(root: Path, asm: str, shift: int) -> RunDir:
    """A run folder as the generate stage leaves it (config.yaml, videos, ok generation records)."""
    cfg = OmegaConf.create({"data": {**OmegaConf.to_container(OmegaConf.load(REPO / "conf/data/mini.yaml")),
                                     "categories": CATEGORIES},
                            "model": {"name": "wan2.1-tiny"}, "asm": {"name": asm}, "schedule": {"name": "paper"},
                            "judge": OmegaConf.load(REPO / "conf/judge/tiny.yaml"), "seed": 0, "device": "cpu"})
    cfg.judge.mode = "parity"
    run = RunDir(root / f"{asm}-paper")
    atomic_write_text(run.config, OmegaConf.to_yaml(cfg))
    bench = load_benchmark("mini", categories=CATEGORIES)
    for sample in bench:
        image = np.asarray(sample.load_image().convert("RGB").resize((80, 48)))
        write_video(run.video(sample.id), np.stack([np.roll(image, shift * t, axis=1) for t in range(8)]), fps=8)
    append_jsonl(run.generation_log, [{"sample_id": s.id, "status": "ok"} for s in bench])
    return run


def tiny_qwen3(mode: str = "parity"):
    return judge_config("tiny-qwen3-vl", [f"judge.mode={mode}"])


@pytest.fixture(scope="module")
def judged_runs(tmp_path_factory):
    """Two runs (asm none and scalar) judged by the tiny Qwen2.5-VL, then re-judged by the tiny Qwen3-VL."""
    root = tmp_path_factory.mktemp("runs")
    os.environ.setdefault("OMITI2V_CACHE", str(root / "cache"))
    runs = []
    for asm, shift in (("none", 4), ("scalar", 9)):
        run = finished_mini_run(root, asm, shift)
        cfg = OmegaConf.load(run.config)
        run_judge(RunContext.from_config(cfg), run, load_benchmark("mini", categories=CATEGORIES))
        write_summary(run, finished_run(run.path)[2], {"run": {"name": asm, "data": "mini", "model": "wan2.1-tiny", "asm": asm, "schedule": "paper"},
                                                        "smoke": True})
        runs.append(run)
    original = [r.judge_log.read_bytes() for r in runs]
    for run in runs:
        rejudge(run.path, tiny_qwen3(), device="cpu")
    return runs, original


def test_rejudge_writes_beside_and_never_touches_the_original(judged_runs):
    runs, original = judged_runs
    for run, before in zip(runs, original, strict=True):
        assert run.judge_log.read_bytes() == before
        extra = list(read_jsonl(run.path / "judges" / "tiny-qwen3-vl" / "judge.jsonl"))
        assert len(extra) == 10 and {r["judge_model"] for r in extra} == {"tiny-qwen3-vl"}
        assert {r["mode"] for r in extra} == {"parity"} and all(r["error"] is None for r in extra)
        summary = json.loads(run.summary.read_text())
        validate_summary(summary)
        cell = summary["judges"]["tiny-qwen3-vl"]
        per_sample = {}
        for r in extra:
            per_sample.setdefault(r["sample_id"], []).append(r["correct"])
        assert cell["metrics"]["parity"]["overall"]["n"] == 4
        assert cell["metrics"]["parity"]["overall"]["value"] == pytest.approx(
            100 * np.mean([np.mean(v) for v in per_sample.values()]))
    # a second rejudge finds everything done: no new records
    rejudge(runs[0].path, tiny_qwen3(), device="cpu")
    assert len(list(read_jsonl(runs[0].path / "judges" / "tiny-qwen3-vl" / "judge.jsonl"))) == 10


@pytest.mark.parametrize("name", ["tiny-qwen3-vl", "tiny-internvl"])
def test_judge_stage_with_an_override_writes_beside(judged_runs, tmp_path, name):
    """Any family through the stage (frame sizing from its processor, memory plan, both modes), on a copy of a
    judged run: its records go to judges/<name>/, the run's own stay byte-identical."""
    runs, original = judged_runs
    run = RunDir(shutil.copytree(runs[1].path, tmp_path / "run"))
    cfg = OmegaConf.load(run.config)
    cfg.judge = judge_config(name, ["judge.mode=both"])
    run_judge(RunContext.from_config(cfg), run, load_benchmark("mini", categories=CATEGORIES))
    assert run.judge_log.read_bytes() == original[1]
    records = list(read_jsonl(run.path / "judges" / name / "judge.jsonl"))
    assert Counter(r["mode"] for r in records) == {"parity": 10, "fast": 10}
    assert {r["judge_model"] for r in records} == {name} and all(r["error"] is None for r in records)


def test_unfinished_folders_are_refused_with_one_named_error(tmp_path, capsys):
    with pytest.raises(UnfinishedRunError, match="no config.yaml"):
        rejudge(tmp_path / "empty", tiny_qwen3())
    run = finished_mini_run(tmp_path, "none", 4)
    kept = list(read_jsonl(run.generation_log))[:-1]
    run.generation_log.write_text("".join(json.dumps(r) + "\n" for r in kept))
    with pytest.raises(UnfinishedRunError, match="1 of 4 samples have no generation record"):
        rejudge(run.path, tiny_qwen3())
    assert cli_main(["rejudge", str(run.path), "judge=tiny-qwen3-vl"]) == 2
    assert "generation unfinished" in capsys.readouterr().err
    assert not (run.path / "judges").exists()


def test_rejudge_resumes_after_sigkill(tmp_path):
    run = finished_mini_run(tmp_path, "none", 4)
    log = run.path / "judges" / "tiny-qwen3-vl" / "judge.jsonl"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMITI2V_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    argv = [sys.executable, "-m", "omiti2v.cli", "rejudge", str(run.path), "judge=tiny-qwen3-vl",
            "judge.mode=parity", "judge.batch_samples=1", "judge.max_new_tokens=64", "--device", "cpu"]
    proc = subprocess.Popen(argv, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and not (log.exists() and log.read_text().count("\n") >= 1):
        time.sleep(0.05)
    assert proc.poll() is None, "rejudge finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    first = list(read_jsonl(log))
    assert 0 < len(first) < 10
    subprocess.run(argv, env=env, cwd=REPO, check=True, capture_output=True, timeout=300)
    records = list(read_jsonl(log))
    assert records[:len(first)] == first  # kept, not redone
    keys = [(r["sample_id"], r["question_id"], r["mode"]) for r in records]
    assert len(keys) == len(set(keys)) == 10


def test_agreement_report_from_two_judge_families(judged_runs, tmp_path):
    runs, _ = judged_runs
    report = build_report([r.path for r in runs], mode="parity", seed=0)
    (kappa,) = report["kappa"].to_dict("records")
    assert kappa["judges"] == "tiny vs tiny-qwen3-vl" and kappa["n"] == 20
    assert set(report["bias"]["judge"]) == {"tiny", "tiny-qwen3-vl"}
    expected_yes = [r["expected"] == "yes" for run in runs for r in read_jsonl(run.judge_log)]
    assert report["bias"]["expected_yes_rate"].tolist() == pytest.approx([100 * np.mean(expected_yes)] * 2)
    deltas = report["deltas"]
    overall = deltas[deltas["metric"] == "overall"].set_index("judge")
    assert set(overall.index) == {"tiny", "tiny-qwen3-vl"} and bool(overall.loc["tiny", "headline"])
    for judge in overall.index:
        base = [r for r in read_jsonl(runs[0].judge_log if judge == "tiny" else runs[0].path / "judges" / judge / "judge.jsonl") if r["mode"] == "parity"]
        treated = [r for r in read_jsonl(runs[1].judge_log if judge == "tiny" else runs[1].path / "judges" / judge / "judge.jsonl") if r["mode"] == "parity"]
        acc = {}
        for name, recs in (("base", base), ("treated", treated)):
            per = {}
            for r in recs:
                per.setdefault(r["sample_id"], []).append(r["correct"])
            acc[name] = {s: np.mean(v) for s, v in per.items()}
        assert overall.loc[judge, "delta"] == pytest.approx(100 * np.mean([acc["treated"][s] - acc["base"][s] for s in acc["base"]]))
    # one baseline, deletion samples only: tau undefined (n = models with a value)
    assert report["ranks"]["n"].tolist() == [1, 0, 0, 1] and report["ranks"]["tau"].isna().all()
    assert overall["survives"].loc["tiny"] and overall["survives_all"].nunique() == 1
    files = write_report(report, tmp_path / "out", "parity")
    assert {p.name for p in files} == {"judge_agreement.md", "kappa.csv", "bias.csv", "ranks.csv", "deltas.csv", "judge_deltas.png"}
    text = (tmp_path / "out" / "judge_agreement.md").read_text()
    assert "tiny vs tiny-qwen3-vl" in text and "+AlignVid deltas" in text
    assert (tmp_path / "out" / "judge_deltas.png").stat().st_size > 1000


def test_agreement_report_reads_what_the_runs_recorded(judged_runs, tmp_path):
    """Like the tables, judge-agreement reads summary.json, samples.csv and the judge records: with the runs'
    benchmark gone (their config's data now points at a missing folder) the report is the same."""
    runs, _ = judged_runs
    copies = []
    for run in runs:
        copy = tmp_path / run.path.name
        shutil.copytree(run.path, copy)
        cfg = OmegaConf.load(copy / "config.yaml")
        cfg.data = {"name": "mini", "source": "local", "root": str(tmp_path / "gone")}
        OmegaConf.save(cfg, copy / "config.yaml")
        copies.append(copy)
    moved = build_report(copies, mode="parity", seed=0)
    for name, frame in build_report([r.path for r in runs], mode="parity", seed=0).items():
        assert frame.equals(moved[name]), name
    (copies[0] / "samples.csv").unlink()
    with pytest.raises(SetupError, match="no samples.csv; judge-agreement reads summarized runs"):
        build_report(copies, mode="parity", seed=0)
