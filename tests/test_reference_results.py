"""The second reference: the AlignVid authors' own re-run of FramePack-F1 (their repository's README) beside the
paper's numbers, the computed Semantic and Tool averages, in the tables and on the leaderboard page."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from report_fixtures import make_run

from omiti2v.leaderboard.board import leaderboard_frame, rebuild_leaderboard
from omiti2v.report import build_tables, discover_runs, load_paper
from omiti2v.report.paper import RERUN, paper_row, rerun_spread
from omiti2v.report.tables import to_markdown

# The authors' README, table "this repo / paper" (percent): semantic and tool averages as printed there.
README_AVERAGES = {("none", RERUN): (66.11, 41.60), ("alignvid", RERUN): (70.16, 45.47),
                   ("none", None): (63.58, 43.76), ("alignvid", None): (67.98, 47.63)}


def test_the_rerun_ships_with_its_source_and_the_averages_are_the_readmes():
    paper = load_paper()
    rerun = paper[paper["table"] == RERUN]
    assert list(rerun["method"]) == ["FramePack F1", "FramePack F1 + AlignVid"]
    assert set(rerun["source"]) == {"https://github.com/LAW1223/AlignVid"}
    for (asm, table), (semantic, tool) in README_AVERAGES.items():
        row = paper_row(paper, "framepack-f1", asm, table)
        assert round(row["semantic_avg"], 2) == semantic and round(row["tool_avg"], 2) == tool
        assert row["semantic_avg"] == pytest.approx((row["modification"] + row["addition"] + row["deletion"]) / 3)
    assert paper_row(paper, "framepack-f1", "none")["table"] == "main"  # the paper's row stays the paper's
    assert rerun_spread(paper) == pytest.approx(62.37 - 58.50)  # deletion, baseline: the largest category gap
    for row in paper[paper["table"] == "newer_baselines"].to_dict("records"):
        assert pd.isna(row["semantic_avg"]) and pd.isna(row["tool_avg"])  # no numbers, no average


def test_tables_show_the_rerun_beside_the_paper_and_average_the_runs(tmp_path):
    path, _ = make_run(tmp_path, "framepack-f1", "none", "paper", seed=4)
    summary = json.loads((path / "summary.json").read_text())
    summary["benchmark"].update(source="hf:AIPeanutman/OmitI2V", n_samples=367)  # compared as a full run
    (path / "summary.json").write_text(json.dumps(summary))
    tables = build_tables(discover_runs(tmp_path), "mini", load_paper(), seed=0)
    base = tables["baselines"].set_index(["model", "label"]).loc[("framepack-f1", "baseline")]
    assert base["modification_rerun"] == 66.25 and base["modification_paper"] == 64.45
    assert base["modification_rerun_diff"] == pytest.approx(base["modification"] - 66.25)
    assert base["semantic_avg"] == pytest.approx((base["modification"] + base["addition"] + base["deletion"]) / 3)
    assert base["tool_avg"] == pytest.approx((base["dynamic_degree"] + base["aesthetic_quality"]) / 2)
    assert base["semantic_avg_paper"] == pytest.approx(63.58, abs=0.005)
    assert base["semantic_avg_diff"] == pytest.approx(base["semantic_avg"] - base["semantic_avg_paper"])
    delta = tables["alignvid"].set_index(["model", "label"]).loc[("framepack-f1", "Δ AlignVid")]
    assert delta["deletion_rerun"] == pytest.approx(64.88 - 62.37) and delta["tool_avg_rerun"] == pytest.approx(3.87, abs=0.005)
    md = to_markdown(tables["alignvid"], "AlignVid")
    assert "| Semantic Avg. |" in md and "| Tool Avg. |" in md
    assert "71.27; re-run 72.08" in md
    assert "up to 3.9 points per category" in md and "https://github.com/LAW1223/AlignVid" in md
    assert "judged against" in md
    wan = tables["alignvid"].set_index(["model", "label"]).loc[("wan2.1", "baseline")]
    assert pd.isna(wan["modification_rerun"])  # the authors re-ran FramePack-F1 only
    assert "re-run" not in to_markdown(tables["modulation"], "Modulation")


def test_the_leaderboard_lists_the_rerun_beside_the_paper_rows(tmp_path):
    frame = leaderboard_frame([], load_paper())
    rerun = frame[frame["kind"] == "reference"].set_index("name")
    assert list(rerun.index) == ["authors' re-run: FramePack F1 + AlignVid", "authors' re-run: FramePack F1"]
    assert rerun.loc["authors' re-run: FramePack F1", "deletion"] == 62.37
    assert rerun.loc["authors' re-run: FramePack F1", "tool_avg"] == pytest.approx(41.605)
    paper = frame[frame["kind"] == "paper"].set_index("name")
    assert paper.loc["paper: FramePack F1", "semantic_avg"] == pytest.approx(63.58, abs=0.005)
    _, page = rebuild_leaderboard(tmp_path)
    text = page.read_text()
    assert '<tr class="reference">' in text and "Semantic Avg." in text and "Tool Avg." in text
    assert "up to 3.9 points per category" in text and 'href="https://github.com/LAW1223/AlignVid"' in text
