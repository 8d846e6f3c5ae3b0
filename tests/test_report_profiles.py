"""Tables under profiles: the paper-profile run is the one a table picks, and per-sample values leave out the
samples its summary excluded from the means (missing videos)."""

from __future__ import annotations

import json

import yaml
from report_fixtures import make_run

from omiti2v.report.runs import discover_runs, pick_run


def _edit_config(path, **keys):
    config = yaml.safe_load((path / "config.yaml").read_text())
    for dotted, value in keys.items():
        node = config
        *parents, leaf = dotted.split("__")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    (path / "config.yaml").write_text(yaml.safe_dump(config))


def test_tables_pick_the_paper_profile_and_follow_its_missing_video_policy(tmp_path):
    board, _ = make_run(tmp_path, "m", "scalar", "paper", seed=1, dirname="scalar-paper-leaderboard")
    paper, _ = make_run(tmp_path, "m", "scalar", "paper", seed=2)
    _edit_config(board, profile="leaderboard")
    _edit_config(paper, profile="paper", judge__missing_video="exclude")
    summary = json.loads((paper / "summary.json").read_text())
    summary["failures"]["excluded"] = ["mini_3"]  # as the report of a run without mini_3's video writes it
    (paper / "summary.json").write_text(json.dumps({**summary, "missing_video": "exclude"}))
    runs = discover_runs(tmp_path)
    picked = pick_run(runs, "mini", "m", "scalar")
    assert picked.path == paper
    assert "mini_3" not in picked.values("overall").index and len(picked.values("overall")) == 11
    leaderboard_run = next(r for r in runs if r.path == board)
    assert "mini_3" in leaderboard_run.values("overall").index  # nothing excluded: counted
