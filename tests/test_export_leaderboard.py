"""Leaderboard entries link their exported dataset, and `omiti2v leaderboard --from-datasets` rebuilds the same
rows from a folder of exports alone (checked against the exported evidence)."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

import pandas as pd
import pytest
from report_fixtures import add_extra_judge, make_run

from omiti2v.cli import main
from omiti2v.export.hub import stage_upload
from omiti2v.leaderboard.board import rebuild_leaderboard, validate_entry
from omiti2v.leaderboard.published import publish_run, refresh_entry_judges
from omiti2v.runs import versions

SHA = "sha256:" + "0" * 64


def add_submission(leaderboard: Path, name: str, seed: int) -> dict:
    """A judged and scored mini run at <leaderboard>/runs/<name> and its entry."""
    path, _ = make_run(leaderboard / "tmp", name, "submission", "submission", seed=seed)
    run = leaderboard / "runs" / name
    run.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(path, run)
    shutil.rmtree(leaderboard / "tmp")
    summary = json.loads((run / "summary.json").read_text())
    entry = {
        "schema_version": "1.0", "name": name, "created": "2026-01-01T00:00:00+00:00",
        "submission": {"model": name, "method": "baseline", "parameters": {}, "contact": "x@y.z"},
        "data": {"name": "mini", **summary["benchmark"]},
        "hashes": {"videos": SHA, "metadata": SHA,
                   "summary": "sha256:" + hashlib.sha256((run / "summary.json").read_bytes()).hexdigest()},
        "evaluation": {"judge": "tiny", "scorer": "tiny", "judge_model": "tiny", "judge_mode": "parity", "config_hash": SHA},
        "smoke": True, "comparable": False, "metrics": summary["metrics"], "versions": versions(),
        "run_dir": f"runs/{name}",
    }
    validate_entry(entry)
    (leaderboard / "entries").mkdir(exist_ok=True)
    (leaderboard / "entries" / f"{name}.json").write_text(json.dumps(entry))
    return entry


@pytest.fixture
def published(tmp_path):
    board = tmp_path / "board"
    alpha, beta = add_submission(board, "alpha", seed=1), add_submission(board, "beta", seed=2)
    rebuild_leaderboard(board)
    result = publish_run(board / "runs" / "alpha", tmp_path / "published" / "alpha")
    publish_run(board / "runs" / "beta", tmp_path / "published" / "beta")
    plain, _ = make_run(tmp_path / "plain", "wan2.1", "none", "paper", seed=3)  # not a submission
    publish_run(plain, tmp_path / "published" / "plain-run")
    return board, tmp_path / "published", result, alpha, beta


def test_export_links_the_entry_and_the_page(published):
    board, folder, result, alpha, _ = published
    assert result["entry"] == board / "entries" / "alpha.json"
    linked = json.loads(result["entry"].read_text())
    assert linked == {**alpha, "dataset": {"path": str(folder / "alpha"), "repo_id": None}}
    frame = pd.read_csv(board / "leaderboard.csv").set_index("name")
    assert frame.loc["alpha", "dataset"] == str(folder / "alpha")


def test_leaderboard_rebuilt_from_exports_alone(published, tmp_path, caplog):
    board, folder, *_ = published
    with caplog.at_level(logging.WARNING):
        assert main(["leaderboard", "--from-datasets", str(folder), "--leaderboard", str(tmp_path / "new")]) == 0
    assert "plain-run: not a leaderboard submission" in caplog.text
    for name in ("alpha", "beta"):
        rebuilt = json.loads((tmp_path / "new" / "entries" / f"{name}.json").read_text())
        original = json.loads((board / "entries" / f"{name}.json").read_text())
        assert rebuilt == {**original, "dataset": {"path": str(folder / name), "repo_id": None}}
    old = pd.read_csv(board / "leaderboard.csv").drop(columns="dataset")
    new = pd.read_csv(tmp_path / "new" / "leaderboard.csv").drop(columns="dataset")
    pd.testing.assert_frame_equal(old, new)


def test_leaderboard_rebuilt_from_hub_copies(published, tmp_path):
    board, folder, *_ = published
    stage_upload(folder / "alpha", tmp_path / "hub" / "alpha")
    main(["leaderboard", "--from-datasets", str(tmp_path / "hub"), "--leaderboard", str(tmp_path / "new")])
    rebuilt = json.loads((tmp_path / "new" / "entries" / "alpha.json").read_text())
    assert rebuilt["metrics"] == json.loads((board / "entries" / "alpha.json").read_text())["metrics"]
    assert rebuilt["dataset"]["path"] == str(tmp_path / "hub" / "alpha")


def _edit_entry(export: Path, **changes) -> None:
    for split in ("questions", "videos"):
        info_path = export / split / "dataset_info.json"
        info = json.loads(info_path.read_text())
        meta = json.loads(info["description"])
        meta["entry"] = {**meta["entry"], **changes}
        info_path.write_text(json.dumps({**info, "description": json.dumps(meta)}))


def test_entry_that_disagrees_with_its_evidence_is_skipped(published, tmp_path, caplog):
    _, folder, _, alpha, _ = published
    shutil.copytree(folder / "alpha", folder / "mallory")
    better = {**alpha["metrics"], "overall": {**alpha["metrics"]["overall"], "value": 99.0}}
    _edit_entry(folder / "mallory", name="mallory", metrics=better)
    with caplog.at_level(logging.WARNING):
        main(["leaderboard", "--from-datasets", str(folder), "--leaderboard", str(tmp_path / "new")])
    assert "mallory: the entry's metrics differ from the exported summary's" in caplog.text
    assert not (tmp_path / "new" / "entries" / "mallory.json").exists()


def test_page_links_a_pushed_dataset(published):
    board, folder, *_ = published
    entry = json.loads((board / "entries" / "beta.json").read_text())
    entry["dataset"] = {"path": None, "repo_id": "someone/omiti2v-beta"}
    validate_entry(entry)
    (board / "entries" / "beta.json").write_text(json.dumps(entry))
    rebuild_leaderboard(board)
    page = (board / "index.html").read_text()
    assert '<a href="https://huggingface.co/datasets/someone/omiti2v-beta"' in page
    assert '<a href="' + str(folder) not in page  # local folders are listed in the CSV, not linked


def test_rejudged_submission_updates_its_entry(tmp_path):
    """After `omiti2v rejudge` rewrote a leaderboard run's summary.json (its "judges"), the entry takes the new
    summary hash and per-judge cells: the page shows the judge, and an export of the run still checks out."""
    board = tmp_path / "board"
    before = add_submission(board, "alpha", seed=1)
    run = board / "runs" / "alpha"
    add_extra_judge(run, "qwen3-vl-8b", 40.0)  # what refresh_summary_judges writes after a rejudge
    assert refresh_entry_judges(run) == board / "entries" / "alpha.json"
    entry = json.loads((board / "entries" / "alpha.json").read_text())
    assert entry["hashes"]["summary"] == "sha256:" + hashlib.sha256((run / "summary.json").read_bytes()).hexdigest()
    assert entry["hashes"]["summary"] != before["hashes"]["summary"] and entry["metrics"] == before["metrics"]
    assert entry["judges"]["qwen3-vl-8b"]["judge_mode"] == "parity"  # the entry's own judge mode
    assert entry["judges"]["qwen3-vl-8b"]["metrics"]["overall"] == {"value": 40.0, "n": 12, "ci95": [35.0, 45.0]}
    assert ">Overall (qwen3-vl-8b)</th>" in (board / "index.html").read_text()
    publish_run(run, tmp_path / "published" / "alpha")
    assert main(["leaderboard", "--from-datasets", str(tmp_path / "published"), "--leaderboard", str(tmp_path / "new")]) == 0
    assert json.loads((tmp_path / "new" / "entries" / "alpha.json").read_text())["judges"] == entry["judges"]
    assert refresh_entry_judges(tmp_path / "elsewhere" / "alpha") is None  # not a leaderboard run
