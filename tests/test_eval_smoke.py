"""`make eval` with no arguments: the whole chain on the mini set with tiny offline models, and its resume."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from omiti2v.asm.presets import WAN21_BGS_BLOCKS
from omiti2v.runs import read_jsonl
from omiti2v.summary import read_sample_table, validate_summary
from omiti2v.video import probe_video

REPO = Path(__file__).resolve().parents[1]


def run_eval(results: Path, *overrides: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, str(REPO / "runners" / "eval.py"), "--config-name", "smoke", f"results_root={results}", *overrides],
        capture_output=True, text=True, cwd=REPO, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc


@pytest.mark.slow
def test_smoke_eval_runs_every_stage_and_resumes(tmp_path):
    proc = run_eval(tmp_path, "data.categories=[deletion]")
    run = tmp_path / "runs" / "mini" / "wan2.1-tiny" / "scalar-paper"
    ids = ["mini_1", "mini_3", "mini_8", "mini_9"]
    assert sorted(p.stem for p in (run / "videos").glob("*.mp4")) == ids
    for sid in ids:
        info = probe_video(run / "videos" / f"{sid}.mp4")
        assert info.fps == 16 and info.num_frames >= 2
    judged = list(read_jsonl(run / "judge.jsonl"))
    n_questions = 2 + 3 + 3 + 2
    assert len(judged) == n_questions and {r["mode"] for r in judged} == {"official"}  # the profiles' judge mode
    scored = list(read_jsonl(run / "scores.jsonl"))
    metrics = ("dynamic_degree", "aesthetic_quality", "i2v_subject", "i2v_background", "copy_index")
    assert {(r["sample_id"], r["metric"]) for r in scored} == {(s, m) for s in ids for m in metrics}
    assert not any(r["comparable"] for r in scored if r["metric"] != "copy_index")  # the copy index has no weights

    summary = json.loads((run / "summary.json").read_text())
    validate_summary(summary)
    assert summary["smoke"] is True and summary["comparable"] is False
    assert summary["metrics"]["deletion"]["n"] == 4 and summary["metrics"]["overall"]["n"] == 4
    assert summary["metrics"]["addition"]["n"] == 0
    assert summary["judge_agreement"] is None and summary["models"]["judge_mode"] == "official"
    assert summary["failures"] == {"generation": [], "judge": [], "excluded": [],
                                   "scores": {m: [] for m in metrics}}
    # The smoke run goes through the paper profile: official resize before the metrics, deviations named.
    assert summary["profile"] == "paper" and summary["missing_video"] == "exclude"
    assert ("Wan base seed set in the config; official: --base_seed -1 draws a random seed per run, which no run "
            "can repeat") in summary["deviations"]
    assert not any(d.startswith(("Wan sampler", "Wan image input")) for d in summary["deviations"])
    assert all(r["details"]["resize"]["mode"] == "paper" and r["details"]["size"][0] >= 512 for r in scored)
    assert "SMOKE RUN" in proc.stdout
    # What the generation installed is recorded once (every sidecar) and read back into the summary.
    recorded = [json.loads((run / "videos" / f"{sid}.json").read_text())["resolved_asm"] for sid in ids]
    assert all(r == recorded[0] for r in recorded) and summary["resolved_asm"] == recorded[0]
    assert recorded[0]["logit_multipliers"] == pytest.approx({"cross_image": 1.35, "cross_text": 1.35 * 1.35})
    assert recorded[0]["blocks"] and set(recorded[0]["blocks"]) <= set(WAN21_BGS_BLOCKS)
    assert recorded[0]["schedule"] == {"blocks": "preset", "window": "early"} and recorded[0]["preset_gamma"] is True
    samples = read_sample_table(run / "samples.csv")
    assert list(samples.index) == ids and 100 * samples["overall"].mean() == pytest.approx(
        summary["metrics"]["overall"]["value"])

    # A second invocation finds everything done: no new video, judge or score records.
    stamps = {p.name: p.stat().st_mtime_ns for p in (run / "videos").glob("*.mp4")}
    run_eval(tmp_path, "data.categories=[deletion]")
    assert {p.name: p.stat().st_mtime_ns for p in (run / "videos").glob("*.mp4")} == stamps
    assert len(list(read_jsonl(run / "judge.jsonl"))) == len(judged)
    assert len(list(read_jsonl(run / "scores.jsonl"))) == len(scored)


def test_missing_weights_stop_a_real_run_with_one_message_and_no_traceback(tmp_path):
    env = {**__import__("os").environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    proc = subprocess.run(
        [sys.executable, str(REPO / "runners" / "generate.py"), "model=framepack", "data=mini", f"results_root={tmp_path}"],
        capture_output=True, text=True, cwd=REPO, timeout=300, env=env,
    )
    assert proc.returncode == 2
    assert "error: preflight: 3 problem(s) before any stage runs" in proc.stderr
    assert ("error: generator checkpoint model.transformer='lllyasviel/FramePackI2V_HY' is missing (HF_HUB_OFFLINE is "
            "set and it is not in the Hugging Face cache): `hf download lllyasviel/FramePackI2V_HY --local-dir DIR`, then model.transformer=DIR") in proc.stderr
    assert "Traceback" not in proc.stderr
    run = tmp_path / "runs" / "mini" / "framepack" / "scalar-paper"
    assert not (run / "generation.jsonl").exists() and not (run / "videos").exists()
