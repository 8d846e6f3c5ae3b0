"""The browse page in headless Chromium: the "fixed by B" and "broken by B" filters against the records, a pair
of videos playing in sync, every question of a sample with its verdicts, sorting, lazy video loading up to the
full benchmark's 367 samples, hostile strings shown as text, and a page of two real smoke runs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
from browse_fixtures import (
    BENCH,
    CHROMIUM,
    HOSTILE,
    MISSING_IN_B,
    QUESTIONS,
    card,
    changes,
    launch,
    make_pair,
    needs_chromium,
    open_page,
    page_json,
    write_videos,
)
from report_fixtures import make_run

from omiti2v.browse.page import build_page
from omiti2v.cli import main
from omiti2v.runs import RunDir, append_jsonl, read_jsonl

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    return make_pair(tmp_path_factory.mktemp("runs"))


@pytest.mark.slow
@needs_chromium
def test_full_size_page_loads_videos_only_near_the_viewport(tmp_path):
    """367 samples (the full benchmark's size), each with a video: at load only the cards near the top have a
    video source; scrolling to the last sample gives it one."""
    from playwright import sync_api

    records = json.loads((BENCH.root / "meta.json").read_text())
    root = tmp_path / "bench"
    shutil.copytree(BENCH.root, root)
    big = [{**records[i % len(records)], "id": f"s{i:03d}"} for i in range(367)]
    (root / "meta.json").write_text(json.dumps(big))
    run = RunDir(tmp_path / "run")
    run.config.write_text(json.dumps({"data": {"source": "local", "root": str(root)}, "model": {"name": "m"}}))
    write_videos(run.path, ["s000"])
    for rec in big[1:]:
        (run.videos / f"{rec['id']}.mp4").hardlink_to(run.videos / "s000.mp4")
    page_path, data = build_page(run.path)
    assert len(data["samples"]) == 367
    errors: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = launch(pw)
        try:
            page = open_page(browser, page_path, errors)
            with_source = "() => [...document.querySelectorAll('video')].filter(v => v.getAttribute('src')).length"
            assert page.locator("article.card").count() == 367 and 1 <= page.evaluate(with_source) <= 6
            page.locator(card("s366")).scroll_into_view_if_needed()
            page.wait_for_function(f"() => document.querySelector('{card('s366')} video').getAttribute('src')")
            assert page.evaluate(with_source) <= 12
        finally:
            browser.close()
    assert errors == []


@needs_chromium
def test_pair_page_in_headless_chromium(pair):
    from playwright import sync_api  # a dev dependency: missing it is a failure, not a skip

    _, _, truth_a, truth_b, pair_page = pair
    errors: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = launch(pw)
        try:
            page = open_page(browser, pair_page, errors)
            # lazy: the first card's videos have a source, the last card's (far below) none yet
            assert page.get_attribute(f"{card(BENCH.ids[0])} video", "src")
            assert page.get_attribute(f"{card(BENCH.ids[-1])} video", "src") is None
            assert page.get_attribute(f"{card(BENCH.ids[-1])} video", "preload") == "none"
            assert page.get_attribute("#count", "data-samples") == "12"

            for kind in ("fixed", "broken"):
                page.select_option("select[name=verdict]", kind)
                expected = changes(truth_a, truth_b, kind)
                assert page.get_attribute("#count", "data-samples") == str(len(expected))
                assert page.get_attribute("#count", "data-questions") == str(sum(expected.values()))
                shown = page.eval_on_selector_all("article.card:not([hidden])", "cs => cs.map(c => c.id)")
                assert sorted(shown) == sorted(f"sample-{sid}" for sid in expected)
                assert page.locator(f"article.card:not([hidden]) tr.change-{kind}").count() == sum(expected.values())
            page.select_option("select[name=verdict]", "")

            # every question of one sample, with both runs' verdicts
            sid = "mini_10"
            rows = page.eval_on_selector_all(f"{card(sid)} table.questions tbody tr", """rs => rs.map(r =>
                [r.dataset.question, ...[...r.querySelectorAll('td.verdict')].map(td => td.dataset.state)])""")
            assert rows == [[q, *("right" if t["correct"][(sid, q)] else "wrong" for t in (truth_a, truth_b))]
                            for q in QUESTIONS[sid]]
            assert page.text_content(f'{card(MISSING_IN_B)} .novideo') == "video file missing (generation.jsonl: ok)"

            # "Play both" plays A and B together; then B follows A: pausing A pauses B (before its end), playing A
            # plays B from A's time
            page.locator(f"{card(sid)} button.play-both").click()
            page.wait_for_function(f"""() => [...document.querySelectorAll('{card(sid)} video')]
                .every(v => !v.paused && v.currentTime > 0.3 && v.videoWidth === 64)""", timeout=30000, polling=100)
            follows = f"""async (action) => {{
                const a = document.querySelector('{card(sid)} video[data-slot=A]');
                const b = document.querySelector('{card(sid)} video[data-slot=B]');
                if (action === 'pause') {{ a.pause(); }} else {{ a.currentTime = 1; await a.play(); }}
                await new Promise(r => setTimeout(r, 300));
                return [b.paused, b.ended, Math.abs(a.currentTime - b.currentTime) < 0.35];
            }}"""
            assert page.evaluate(follows, "pause") == [True, False, True]
            assert page.evaluate(follows, "play") == [False, False, True]
            assert page.eval_on_selector(f"{card(sid)} img", "img => img.complete && img.naturalWidth > 0")

            page.select_option("select[name=sort]", "acc:d")  # sorted by B - A accuracy, descending
            page.select_option("select[name=order]", "desc")
            shown = page.eval_on_selector_all("article.card:not([hidden])", "cs => cs.map(c => c.id.slice(7))")
            delta = {s: np.mean([truth_b["correct"][(s, q)] for q in QUESTIONS[s]])
                     - np.mean([truth_a["correct"][(s, q)] for q in QUESTIONS[s]]) for s in QUESTIONS}
            assert [delta[s] for s in shown] == sorted(delta.values(), reverse=True)
        finally:
            browser.close()
    assert errors == []


@needs_chromium
def test_hostile_strings_are_shown_as_text_in_chromium(tmp_path):
    """A submission whose model name and a judge reply carry markup, quotes, a comment opener and a bidi
    override: the page shows them as text (the bidi character as a visible mark) and runs none of it."""
    from playwright import sync_api

    run, _ = make_run(tmp_path, "wan2.1", "none", "paper", seed=4)
    summary = json.loads((run / "summary.json").read_text())
    summary["run"].update({"model": HOSTILE, "asm": "submission", "schedule": "submission"})
    (run / "summary.json").write_text(json.dumps(summary))
    question = BENCH["mini_0"].questions[0]
    append_jsonl(run / "judge.jsonl", [{
        "sample_id": "mini_0", "question_id": question.id, "category": question.category, "question": question.question,
        "expected": question.expected_answer, "answer": "unknown", "correct": False, "response": HOSTILE,
        "p_yes": None, "mode": "parity", "judge_model": "tiny", "error": None}])
    page_path, _ = build_page(run, out=tmp_path / "page")
    html = page_path.read_text()
    assert "<script>window" not in html and "\u202e" not in html and "<img src=x" not in html
    visible = HOSTILE.replace("\u202e", "\u27e8U+202E\u27e9")
    errors: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = launch(pw)
        try:
            page = open_page(browser, page_path, errors)
            assert page.text_content('#runs tr[data-slot="A"] td.run-model') == visible
            assert page.text_content(f'{card("mini_0")} tr[data-question="{question.id}"] .reply') == visible
            assert page.locator(".shown-mark").count() == 2
            assert page.evaluate("() => window.__pwned") is None
            assert page.locator("img[src=x]").count() == 0 and page.locator("script").count() == 2
        finally:
            browser.close()
    assert errors == []


@pytest.mark.slow
def test_pair_page_of_two_real_smoke_runs(tmp_path):
    """Two real smoke runs (tiny generator, judge in both modes, scorers) with and without ASM: the page shows
    each run's latest parity reply, the fast mode's P(yes), the recorded scores, the generated videos, and
    per-sample accuracies equal to the summary stage's samples.csv; in Chromium a real video plays."""
    from omiti2v.summary import read_sample_table

    proc = subprocess.run(  # one Hydra multirun: both runs in one process
        [sys.executable, str(REPO / "runners" / "eval.py"), "-m", "--config-name", "smoke", f"results_root={tmp_path}",
         "data.ids=[mini_1,mini_3]", "asm=none,scalar", "judge.mode=both"], capture_output=True, text=True, cwd=REPO, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    a, b = (tmp_path / "runs" / "mini" / "wan2.1-tiny" / name for name in ("none-paper", "scalar-paper"))
    assert main(["browse", str(a), str(b), "--out", str(tmp_path / "page")]) == 0
    page_path = tmp_path / "page" / "index.html"
    data = page_json(page_path)
    assert [s["id"] for s in data["samples"]] == ["mini_1", "mini_3"]
    assert [r["judge_mode"] for r in data["runs"]] == ["parity", "parity"] and all(r["smoke"] for r in data["runs"])
    for cell_index, run in enumerate((a, b)):
        records = {(r["sample_id"], r["question_id"], r["mode"]): r for r in read_jsonl(run / "judge.jsonl")}
        scores = {(r["sample_id"], r["metric"]): r["value"] for r in read_jsonl(run / "scores.jsonl")}
        accuracy = read_sample_table(run / "samples.csv")["overall"]
        for s in data["samples"]:
            cell = s["runs"][cell_index]
            for q, v in zip(s["questions"], cell["verdicts"], strict=True):
                assert v["reply"] == records[(s["id"], q["id"], "parity")]["response"]
                assert v["p_yes"] == records[(s["id"], q["id"], "fast")]["p_yes"]
            right = sum(v["state"] == "right" for v in cell["verdicts"])
            assert right / len(s["questions"]) == pytest.approx(accuracy[s["id"]])
            assert {m: c["value"] for m, c in cell["scores"].items()} == {  # every metric the tiny scorers ran
                m: value for (sample_id, m), value in scores.items() if sample_id == s["id"]}
            assert (page_path.parent / unquote(cell["video"])).resolve() == (run / "videos" / f"{s['id']}.mp4").resolve()
    if not CHROMIUM.exists() and shutil.which("chromium") is None:
        return
    from playwright import sync_api

    errors: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = launch(pw)
        try:
            page = open_page(browser, page_path, errors)
            assert page.get_attribute("#count", "data-samples") == "2"
            page.locator(f"{card('mini_3')} button.play-both").click()
            page.wait_for_function(f"""() => [...document.querySelectorAll('{card("mini_3")} video')]
                .every(v => v.readyState >= 2 && v.videoWidth > 0 && (v.currentTime > 0 || v.ended))""", timeout=30000, polling=100)
        finally:
            browser.close()
    assert errors == []
