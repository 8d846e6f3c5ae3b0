"""Tables under profiles: the paper-profile run is the one a table picks, and per-sample values leave out the
samples its summary excluded from the means (missing videos)."""

from __future__ import annotations

from report_fixtures import make_run

from omiti2v.report.runs import discover_runs, pick_run


def test_tables_pick_the_paper_profile_and_follow_its_missing_video_policy(tmp_path):
    board, _ = make_run(tmp_path, "m", "scalar", "paper", seed=1, dirname="scalar-paper-leaderboard",
                        profile="leaderboard")
    paper, _ = make_run(tmp_path, "m", "scalar", "paper", seed=2, profile="paper", without_video=("mini_3",))
    runs = discover_runs(tmp_path)
    picked = pick_run(runs, "mini", "m", "scalar")
    assert picked.path == paper and picked.summary["failures"]["excluded"] == ["mini_3"]
    assert "mini_3" not in picked.values("overall").index and len(picked.values("overall")) == 11
    leaderboard_run = next(r for r in runs if r.path == board)
    assert "mini_3" in leaderboard_run.values("overall").index  # nothing excluded: counted
