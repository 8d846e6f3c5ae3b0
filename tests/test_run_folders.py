"""Run folders from configuration to summary: names that would leave the results root stop the run before Hydra
makes a folder, seeds are usable, a summary covers what its folder holds (a subset run never shrinks it), a
folder with nothing to summarize and a run where every sample failed end non-zero, and a folder holding only
Hydra logs is no run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from test_summary import judge_records

from omiti2v.cli import main
from omiti2v.config_check import config_violations
from omiti2v.data import load_benchmark
from omiti2v.errors import SetupError
from omiti2v.pipeline import run_stages
from omiti2v.runs import RunDir, RunFailedError, append_jsonl

REPO = Path(__file__).resolve().parents[1]
MINI = load_benchmark("mini")


def smoke_cfg(results: Path, *overrides: str):
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("smoke", overrides=[f"results_root={results}", "device=cpu", "preflight=false", *overrides])
    OmegaConf.set_struct(cfg, False)
    return cfg


def judged_run(results: Path, ids: list[str] | None = None) -> RunDir:
    """The smoke run folder with a video file and judge records (every answer right) for `ids` (all of mini when
    None); the summary reads the videos' presence only."""
    run = RunDir(Path(smoke_cfg(results).run_dir))
    kept = [s for s in MINI if ids is None or s.id in ids]
    run.videos.mkdir()
    for sample in kept:
        run.video(sample.id).write_bytes(b"")
    append_jsonl(run.judge_log, judge_records(kept, lambda s, q: True, mode="official"))
    return run


def covered(run: RunDir) -> tuple[int, list[str]]:
    summary = json.loads(run.summary.read_text())
    return summary["benchmark"]["n_samples"], list(pd.read_csv(run.samples)["sample_id"])


@pytest.mark.parametrize("override", ["data.limit=4", "data.ids=[mini_3]", "data.categories=[deletion]",
                                      "data.domains=[Living Beings]"])
def test_a_subset_run_on_a_finished_folder_keeps_its_summary_whole(tmp_path, override):
    run = judged_run(tmp_path)
    run_stages(smoke_cfg(tmp_path), ["summary"])
    before = json.loads(run.summary.read_text())
    run_stages(smoke_cfg(tmp_path, override), ["summary"])
    after = json.loads(run.summary.read_text())
    assert covered(run) == (12, MINI.ids)
    assert after["benchmark"]["hash"] == before["benchmark"]["hash"] and after["metrics"] == before["metrics"]


def test_a_subset_run_in_a_fresh_folder_covers_the_subset_and_a_wider_one_grows_it(tmp_path):
    run = judged_run(tmp_path, ["mini_0", "mini_1", "mini_2", "mini_3"])
    run_stages(smoke_cfg(tmp_path, "data.limit=4"), ["summary"])
    assert covered(run) == (4, MINI.ids[:4])
    run_stages(smoke_cfg(tmp_path, "data.ids=[mini_9]"), ["summary"])  # mini_9 never judged: listed as failed
    summary = json.loads(run.summary.read_text())
    assert covered(run) == (5, [*MINI.ids[:4], "mini_9"]) and summary["failures"]["judge"] == ["mini_9"]


def test_a_summary_with_nothing_to_summarize_is_an_error_and_writes_nothing(tmp_path):
    with pytest.raises(SetupError, match="nothing to summarize"):
        run_stages(smoke_cfg(tmp_path), ["summary"])
    run = Path(smoke_cfg(tmp_path).run_dir)
    assert not (run / "summary.json").exists() and not (run / "samples.csv").exists()


def test_a_run_where_every_sample_failed_ends_non_zero_with_its_summary(tmp_path):
    cfg = smoke_cfg(tmp_path, "data.limit=3")
    run = RunDir(Path(cfg.run_dir))
    append_jsonl(run.generation_log, [{"sample_id": sid, "status": "failed", "error": "boom"} for sid in MINI.ids[:3]])
    with pytest.raises(RunFailedError, match="every one of the 3 samples failed"):
        run_stages(cfg, ["summary"])
    assert json.loads(run.summary.read_text())["failures"]["generation"] == MINI.ids[:3]
    append_jsonl(run.generation_log, [{"sample_id": "mini_0", "status": "ok"}])  # one sample made it
    run_stages(cfg, ["summary"])


def test_a_run_whose_judge_answered_nothing_ends_non_zero_and_one_answer_is_a_result(tmp_path):
    run = judged_run(tmp_path, [])
    broken = [{**r, "correct": False, "error": "CUDA out of memory"} for r in judge_records(MINI, lambda s, q: True, mode="official")]
    append_jsonl(run.judge_log, broken)
    for sample in MINI:
        run.video(sample.id).write_bytes(b"")
    with pytest.raises(RunFailedError, match="every one of the 12 samples failed"):
        run_stages(smoke_cfg(tmp_path), ["summary"])
    append_jsonl(run.judge_log, judge_records(MINI, lambda s, q: True, mode="official")[:1])  # mini_0 answered one question
    assert json.loads(run.summary.read_text())["failures"]["judge"] == sorted(MINI.ids)
    run_stages(smoke_cfg(tmp_path), ["summary"])


@pytest.mark.parametrize(("override", "problem"), [
    ("seed=1180591620717411303424", "seed 1180591620717411303424: must be an integer from 0 to 2**63-1"),
    ("seed=-1", "seed -1: must be an integer from 0 to 2**63-1"),
    ("model.seed=18446744073709551616", "model.seed 18446744073709551616: must be an integer from 0"),
    ("variant=/../../x", "variant '/../../x': only letters, digits"),
    ("data.name=../../x", "data.name: '../../x': characters '/' not allowed"),
    ("judge.name=CON", "judge.name: 'CON': CON is a device name on Windows"),
    ("run_name=a/../../b", "run_name 'a/../../b': folder '..': must not start with '.'"),
])
def test_config_values_that_cannot_be_used_are_violations(override, problem):
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        violations = config_violations(compose("smoke", overrides=["device=cpu", override]))
    assert any(v.startswith(problem) for v in violations), violations


@pytest.mark.parametrize("args", [["variant=/../../../escaped"], ["-m", "data.name=mini,../../../escaped"]],
                         ids=["run", "multirun"])
def test_a_name_that_leaves_the_results_root_stops_before_hydra_makes_a_folder(tmp_path, args):
    results = tmp_path / "a" / "b" / "results"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, str(REPO / "runners" / "eval.py"), *args[:1 if args[0] == "-m" else 0],
                           "--config-name", "smoke", f"results_root={results}", *args[1 if args[0] == "-m" else 0:]],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert [line for line in proc.stderr.splitlines() if line.startswith("error: ")] == proc.stderr.splitlines()
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == []  # not even .hydra-logs


def test_an_unwritable_results_root_is_one_line_before_hydra_makes_a_folder(tmp_path, monkeypatch, capsys):
    from omiti2v.run_root import RunRootCheck

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("smoke", overrides=[f"results_root={tmp_path / 'ro'}"], return_hydra_config=True)

    def read_only(self, *args, **kwargs):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(Path, "mkdir", read_only)
    with pytest.raises(SystemExit) as stopped:
        RunRootCheck().on_run_start(config=cfg)
    assert stopped.value.code == 2
    assert capsys.readouterr().err == (f"error: cannot write Hydra's log folder {tmp_path}/ro/runs/mini/wan2.1-tiny/"
                                       "scalar-paper/.hydra-logs: Read-only file system; choose a writable "
                                       "results_root (or OMITI2V_RESULTS)\n")


def test_judge_agreement_skips_folders_holding_only_hydra_logs(tmp_path, capsys, caplog):
    run = judged_run(tmp_path)
    run_stages(smoke_cfg(tmp_path), ["summary"])
    planned = tmp_path / "planned"
    (planned / ".hydra-logs" / "20260101-000000").mkdir(parents=True)  # what `make plan` leaves
    assert main(["judge-agreement", str(planned), str(run.path), "--out", str(tmp_path / "out")]) == 0
    assert "holds only .hydra-logs" in caplog.text and (tmp_path / "out").is_dir()
    assert main(["judge-agreement", str(planned), "--out", str(tmp_path / "out2")]) == 2
    assert "none of" in capsys.readouterr().err and not (tmp_path / "out2").exists()
    assert main(["judge-agreement", str(tmp_path / "typo"), "--out", str(tmp_path / "out2")]) == 2
    assert "no such folder" in capsys.readouterr().err


def test_reproduce_does_not_take_a_subset_summary_for_the_run(tmp_path):
    from omiti2v.reproduce import plan_runs

    args = [f"results_root={tmp_path}", "data=mini"]
    run = next(r for r in plan_runs("schedule", args)[1] if r.run_name == "mini/wan2.1/scalar-mid")
    run.run_dir.mkdir(parents=True)
    for covered_samples, done in ((4, False), (12, True)):
        summary = {"failures": {"generation": [], "judge": []}, "benchmark": {"n_samples": covered_samples}}
        (run.run_dir / "summary.json").write_text(json.dumps(summary))
        planned = {r.run_name: r for r in plan_runs("schedule", args)[1]}
        assert planned["mini/wan2.1/scalar-mid"].done is done


def test_a_judge_name_that_leaves_the_run_folder_is_refused(tmp_path):
    from omiti2v.paths import UnsafePathError
    from omiti2v.rejudge import judge_config
    from omiti2v.runs import JudgeRunDir

    run = RunDir(tmp_path / "run")
    assert JudgeRunDir(run, "tiny").judge_log == run.path / "judges" / "tiny" / "judge.jsonl"
    with pytest.raises(UnsafePathError, match="judge name '../../x'"):
        JudgeRunDir(run, "../../x")  # `omiti2v rejudge RUN judge=tiny name=../../x`
    with pytest.raises(SetupError, match="no conf/judge/../config.yaml"):
        judge_config("../config", [])


def test_an_append_takes_over_a_lease_marker_a_killed_writer_left_empty(tmp_path, monkeypatch):
    """A writer killed between creating its lease marker and filling it leaves an empty file, on which filelock
    waits forever; once it has stayed empty ABANDONED_MARKER_S it is removed and the append goes through. A fresh
    empty marker (a writer filling it right now) is waited for, and a live one times out with the one-line error."""
    import omiti2v.runs as runs

    monkeypatch.setattr(runs, "ABANDONED_MARKER_S", 0.5)
    monkeypatch.setattr(runs, "APPEND_WAIT_S", 3.0)
    log = tmp_path / "generation.jsonl"
    marker = tmp_path / ".generation.jsonl.lock"
    marker.touch()
    os.utime(marker, (os.path.getmtime(marker) - 60,) * 2)
    append_jsonl(log, [{"sample_id": "a"}])
    assert [json.loads(line)["sample_id"] for line in log.read_text().splitlines()] == ["a"]
    marker.touch()  # empty and fresh: taken over only once it has stayed empty long enough
    append_jsonl(log, [{"sample_id": "b"}])
    assert len(log.read_text().splitlines()) == 2
    monkeypatch.setattr(runs, "ABANDONED_MARKER_S", 30.0)
    monkeypatch.setattr(runs, "APPEND_WAIT_S", 1.0)
    marker.touch()
    with pytest.raises(SetupError, match="another process has held the append lock"):
        append_jsonl(log, [{"sample_id": "c"}])


def test_removing_an_abandoned_marker_never_drops_one_another_launch_made_meanwhile(tmp_path, monkeypatch):
    """Two launches find the same empty marker; the first removes it and claims (a new, filled marker) before the
    second moves 'it' aside: the second must put the live marker back."""
    import omiti2v.runs as runs

    marker = tmp_path / ".claim"
    marker.touch()
    os.utime(marker, (os.path.getmtime(marker) - 60,) * 2)
    rename = os.rename

    def first_launch_wins(src, dst):
        os.unlink(src)
        Path(src).write_text("filelock/2\npid=1\n")
        rename(src, dst)

    monkeypatch.setattr(runs.os, "rename", first_launch_wins)
    runs.remove_abandoned_lease(marker)
    assert marker.read_text() == "filelock/2\npid=1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".claim"]
    monkeypatch.setattr(runs.os, "rename", rename)
    marker.write_text("")
    os.utime(marker, (os.path.getmtime(marker) - 60,) * 2)
    assert runs.remove_abandoned_lease(marker) and not list(tmp_path.iterdir())
