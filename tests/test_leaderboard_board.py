"""Leaderboard CSV and HTML page from entries: ordering, paper rows, schema checks, escaping, and the page in
headless Chromium (loads without console errors, rows ordered by overall, header clicks re-sort)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from omiti2v.leaderboard.board import rebuild_leaderboard, validate_entry
from omiti2v.runs import versions

CHROMIUM = Path("/usr/bin/chromium")
SHA = "sha256:" + "0" * 64


def make_entry(name: str, overall: float, modification: float, model: str = "m", smoke: bool = False) -> dict:
    """An entry on the full benchmark, or (smoke) a tiny-model run on the 12-sample mini set."""
    n = 12 if smoke else 367

    def cell(v):
        return {"value": v, "n": n, "ci95": [max(0.0, v - 5), min(100.0, v + 5)]}

    return {
        "schema_version": "1.0", "name": name, "created": "2026-01-01T00:00:00+00:00",
        "submission": {"model": model, "method": "baseline", "parameters": {}, "contact": "x@y.z"},
        "data": ({"name": "mini", "source": "mini", "hash": SHA, "n_samples": 12} if smoke
                 else {"name": "omiti2v", "source": "hf:AIPeanutman/OmitI2V", "hash": SHA, "n_samples": 367}),
        "hashes": {"videos": SHA, "metadata": SHA, "summary": SHA},
        "evaluation": {"judge": "tiny", "scorer": "tiny", "judge_model": "tiny", "judge_mode": "parity", "config_hash": SHA},
        "smoke": smoke, "comparable": not smoke,
        "metrics": {"overall": cell(overall), "modification": cell(modification), "addition": cell(50.0),
                    "deletion": cell(40.0), "dynamic_degree": cell(30.0), "aesthetic_quality": cell(45.0)},
        "versions": versions(), "run_dir": f"runs/{name}",
    }


@pytest.fixture
def board(tmp_path) -> Path:
    entries = tmp_path / "entries"
    entries.mkdir()
    for e in (make_entry("alpha", 55.0, 10.0), make_entry("beta", 91.0, 20.0),
              make_entry("gamma", 12.5, 99.0, model="<script>alert(1)</script>"), make_entry("tinyrun", 99.5, 5.0, smoke=True)):
        (entries / f"{e['name']}.json").write_text(json.dumps(e))
    broken = make_entry("broken", 50.0, 50.0)
    del broken["hashes"]
    (entries / "broken.json").write_text(json.dumps(broken))
    rebuild_leaderboard(tmp_path)
    return tmp_path


def test_entry_schema_rejects_bad_fields():
    entry = make_entry("ok", 1.0, 2.0)
    validate_entry(entry)
    entry["metrics"]["overall"]["value"] = 120.0
    with pytest.raises(ValueError, match="metrics.overall.value"):
        validate_entry(entry, "e.json")
    with pytest.raises(ValueError, match="name"):
        validate_entry({**make_entry("ok", 1.0, 2.0), "name": "../evil"})


def test_csv_ordered_by_overall_with_paper_rows(board):
    frame = pd.read_csv(board / "leaderboard.csv")
    assert "broken" not in set(frame["name"])  # invalid entry skipped, the rest still listed
    ranked = frame[frame["section"] == "ranked"]
    assert len(ranked) == 3 + 10 + 2 + 3  # entries, paper rows, the authors' re-run, newer baselines (no numbers, last)
    overall = ranked["overall"].dropna().tolist()
    assert overall == sorted(overall, reverse=True) and ranked["overall"].iloc[-3:].isna().all()
    assert ranked.iloc[0]["name"] == "beta" and ranked["rank"].tolist() == list(range(1, 19))
    paper = frame[frame["kind"] == "paper"]
    assert paper["deletion"].tolist().count(69.47) == 1
    assert frame.loc[frame["name"] == "beta", "overall_ci_low"].iloc[0] == 86.0


def test_smoke_entries_are_listed_apart_and_never_ranked(board):
    frame = pd.read_csv(board / "leaderboard.csv")
    smoke = frame[frame["name"] == "tinyrun"].iloc[0]
    # its overall (99.5) beats every ranked row, yet it has no rank and comes after all of them
    assert smoke["section"] == "unranked" and pd.isna(smoke["rank"]) and frame.index[-1] == smoke.name
    page = (board / "index.html").read_text()
    ranked, _, unranked = page.partition("Not ranked: smoke runs and subsets")
    assert "tinyrun" not in ranked and "tinyrun" in unranked and 'id="unranked"' in unranked


def test_html_escapes_submitted_text(board):
    page = (board / "index.html").read_text()
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    # self-contained: nothing fetched (the one address is a link to the authors' re-run's source)
    assert "http://" not in page and page.count("https://") == page.count('<a href="https://') == 1


@pytest.mark.skipif(not CHROMIUM.exists() and shutil.which("chromium") is None,
                    reason="Debian chromium not installed (apt-get install chromium); .ci/run installs it")
def test_page_in_headless_chromium(board):
    from playwright import sync_api  # a dev dependency: missing it is a failure, not a skip

    executable = str(CHROMIUM if CHROMIUM.exists() else shutil.which("chromium"))
    errors: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        try:
            page = browser.new_page()
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto((board / "index.html").as_uri())

            def column(metric: str) -> list[float | None]:
                idx = page.eval_on_selector_all("#leaderboard thead th", "(hs, m) => hs.findIndex(h => h.dataset.metric === m)", metric)
                vals = page.eval_on_selector_all("#leaderboard tbody tr", "(rows, i) => rows.map(r => r.cells[i].dataset.value)", idx)
                return [float(v) if v else None for v in vals]

            def numbers_then_blanks(values: list[float | None], reverse: bool) -> bool:
                known = [v for v in values if v is not None]
                return values == sorted(known, reverse=reverse) + [None] * (len(values) - len(known))

            overall = column("overall")
            assert len(overall) == 3 + 10 + 2 + 3  # entries, paper rows, the authors' re-run, newer baselines
            assert numbers_then_blanks(overall, reverse=True) and overall[-3:] == [None] * 3
            names = page.eval_on_selector_all("#leaderboard tbody tr", "rows => rows.map(r => r.cells[1].textContent.trim())")
            assert names[0].startswith("beta")

            page.click("#leaderboard thead th[data-metric=modification]")
            first = column("modification")
            assert numbers_then_blanks(first, reverse=True) and first[0] == 99.0  # gamma's modification
            page.click("#leaderboard thead th[data-metric=modification]")
            second = column("modification")  # blanks stay last in both directions
            assert numbers_then_blanks(second, reverse=False) and second[0] == 10.0
            page.click("#leaderboard thead th:nth-child(2)")  # text column: alphabetical
            names = page.eval_on_selector_all("#leaderboard tbody tr", "rows => rows.map(r => r.cells[1].textContent.trim().toLowerCase())")
            assert names == sorted(names)
        finally:
            browser.close()
    assert errors == []


def test_rejudged_entries_add_per_judge_columns(tmp_path):
    """An entry re-judged by another judge (its `judges`) gives every row that judge's columns: the semantic cells
    in the CSV, its Overall on the page (empty for the others); a page without such entries has neither."""
    entries = tmp_path / "entries"
    entries.mkdir()
    judged = make_entry("alpha", 55.0, 10.0)
    judged["schema_version"] = "1.1"
    judged["judges"] = {"qwen3-vl-8b": {"judge_model": "Qwen/Qwen3-VL-8B-Instruct", "judge_mode": "parity", "metrics": {
        m: {"value": v, "n": 367, "ci95": [v - 1, v + 1]} for m, v in (("overall", 48.5), ("deletion", 30.0))}}}
    validate_entry(judged)
    for e in (judged, make_entry("beta", 91.0, 20.0)):
        (entries / f"{e['name']}.json").write_text(json.dumps(e))
    rebuild_leaderboard(tmp_path, paper_dir=None)
    frame = pd.read_csv(tmp_path / "leaderboard.csv").set_index("name")
    assert (frame.loc["alpha", "overall@qwen3-vl-8b"], frame.loc["alpha", "overall@qwen3-vl-8b_ci_low"]) == (48.5, 47.5)
    assert frame.loc["alpha", "deletion@qwen3-vl-8b"] == 30.0 and pd.isna(frame.loc["alpha", "addition@qwen3-vl-8b"])
    assert pd.isna(frame.loc["beta", "overall@qwen3-vl-8b"]) and frame.loc["beta", "rank"] == 1  # ranked by its own judge
    page = (tmp_path / "index.html").read_text()
    assert page.count(">Overall (qwen3-vl-8b)</th>") == 1 and 'data-value="48.500000"' in page
    bad = json.loads(json.dumps(judged))
    bad["judges"]["qwen3-vl-8b"]["metrics"]["overall"]["value"] = 60.0  # outside its CI
    with pytest.raises(ValueError, match="judges.qwen3-vl-8b.metrics.overall.ci95"):
        validate_entry(bad)
    (entries / "alpha.json").write_text(json.dumps(make_entry("alpha", 55.0, 10.0)))
    rebuild_leaderboard(tmp_path, paper_dir=None)
    assert not any("@" in c for c in pd.read_csv(tmp_path / "leaderboard.csv").columns)
    assert "another judge" not in (tmp_path / "index.html").read_text()
