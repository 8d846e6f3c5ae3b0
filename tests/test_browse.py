"""`omiti2v browse`: the page's data against the records it was built from (verdicts, fixed/broken counts, scores
of any scorer, missing videos and verdicts), its links (videos linked or copied, images, tables, leaderboard),
the JSON embedding, and the page in headless Chromium: the "fixed by B" filter, a pair of videos playing in sync,
every question of a sample, lazy video loading, and hostile strings shown as text."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
from report_fixtures import make_run

from omiti2v.browse import existing_pages
from omiti2v.browse.page import build_page, embed_json
from omiti2v.cli import main
from omiti2v.data import load_benchmark
from omiti2v.errors import SetupError
from omiti2v.runs import RunDir, append_jsonl, read_jsonl
from omiti2v.video import write_video

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
BENCH = load_benchmark("mini")
QUESTIONS = {s.id: [q.id for q in s.questions] for s in BENCH}
MISSING_IN_B = "mini_5"
EXTRA_METRIC = "subject_consistency"  # a scorer the page has never heard of
HOSTILE = '<script>window.__pwned=1</script>"\'\u202eevil<img src=x onerror="window.__pwned=2"><!--'

needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists() and shutil.which("chromium") is None,
    reason="Debian chromium not installed (apt-get install chromium); .ci/run installs it")


def write_videos(run: Path, ids) -> None:
    """6-second 64x48 H.264 clips (what the harness writes), one per id."""
    for i, sid in enumerate(ids):
        frames = np.random.default_rng(i).integers(0, 255, (48, 48, 64, 3), dtype=np.uint8)
        write_video(RunDir(run).video(sid), frames, fps=8)


def add_scores(run: Path, metric: str, offset: float) -> None:
    append_jsonl(RunDir(run).scores_log, [
        {"sample_id": s.id, "metric": metric, "value": offset + i / 100, "backend": "test", "comparable": True,
         "error": None, "details": {"frames": 5, "resize": {"ratio": 1.5, "mode": "paper"}, "pair_scores": [1.0]}}
        for i, s in enumerate(BENCH)])


def page_json(page: Path) -> dict:
    (block,) = re.findall(r'<script type="application/json" id="browse-data">(.*?)</script>', page.read_text(), re.S)
    return json.loads(block)


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """Runs A (no ASM) and B (scalar) of the mini set with seeded verdicts; B lacks one video; both carry a
    scorer beyond the paper's. Returns (A, B, truth A, truth B)."""
    root = tmp_path_factory.mktemp("runs")
    a, truth_a = make_run(root, "wan2.1", "none", "paper", seed=1)
    b, truth_b = make_run(root, "wan2.1", "scalar", "paper", seed=2)
    write_videos(a, BENCH.ids)
    write_videos(b, [i for i in BENCH.ids if i != MISSING_IN_B])
    add_scores(a, EXTRA_METRIC, 0.5)
    add_scores(b, EXTRA_METRIC, 0.7)
    return a, b, truth_a, truth_b


@pytest.fixture(scope="module")
def pair_page(pair) -> Path:
    a, b, _, _ = pair
    assert main(["browse", str(a), str(b)]) == 0
    return b / "browse" / "vs-none-paper" / "index.html"


def changes(truth_a: dict, truth_b: dict, kind: str) -> dict[str, int]:
    """sample -> questions that went wrong -> right ("fixed") or right -> wrong ("broken") from A to B."""
    out: dict[str, int] = {}
    for key, right_a in truth_a["correct"].items():
        right_b = truth_b["correct"][key]
        if (kind == "fixed" and not right_a and right_b) or (kind == "broken" and right_a and not right_b):
            out[key[0]] = out.get(key[0], 0) + 1
    return out


def test_pair_page_data_follows_the_records(pair, pair_page):
    a, b, truth_a, truth_b = pair
    data = page_json(pair_page)
    assert [s["id"] for s in data["samples"]] == BENCH.ids and [r["slot"] for r in data["runs"]] == ["A", "B"]
    for s in data["samples"]:
        assert [q["id"] for q in s["questions"]] == QUESTIONS[s["id"]]
        for run, truth in zip(s["runs"], (truth_a, truth_b), strict=True):
            states = [v["state"] for v in run["verdicts"]]
            assert states == ["right" if truth["correct"][(s["id"], q)] else "wrong" for q in QUESTIONS[s["id"]]]
            assert run["scores"]["aesthetic_quality"]["value"] == truth["aesthetic_quality"][s["id"]]
            assert run["scores"]["dynamic_degree"]["value"] == truth["dynamic_degree"][s["id"]]
        # the new scorer is shown like the paper's, its numeric details flattened (lists and text left out)
        i = BENCH.ids.index(s["id"])
        assert [r["scores"][EXTRA_METRIC]["value"] for r in s["runs"]] == pytest.approx([0.5 + i / 100, 0.7 + i / 100])
        assert s["runs"][0]["scores"][EXTRA_METRIC]["details"] == {"frames": 5, "resize.ratio": 1.5}
        # videos are linked where they are, the image is a thumbnail beside the page
        for run, folder in zip(s["runs"], (a, b), strict=True):
            if folder == b and s["id"] == MISSING_IN_B:
                assert run["video"] is None and "missing" in run["video_note"]
            else:
                assert (pair_page.parent / unquote(run["video"])).resolve() == (folder / "videos" / f"{s['id']}.mp4").resolve()
        assert (pair_page.parent / s["image"]).is_file()
    assert data["metrics"] == ["dynamic_degree", "aesthetic_quality", EXTRA_METRIC]
    assert data["runs"][1]["missing"] == ["1 video(s) missing"] and data["runs"][0]["missing"] == []
    assert changes(truth_a, truth_b, "fixed") and changes(truth_a, truth_b, "broken")  # the fixture has both


def test_pages_are_found_by_the_tables_and_the_leaderboard(pair, pair_page, tmp_path):
    """`omiti2v tables` links each run row to the pages built at their default places (relative to the table);
    the leaderboard links an entry to the page in its run folder, only where one was built."""
    from test_leaderboard_board import make_entry

    from omiti2v.leaderboard.board import rebuild_leaderboard

    a, b, _, _ = pair
    assert main(["browse", str(a)]) == 0
    assert existing_pages(a) == [("samples", a / "browse" / "index.html")]
    assert existing_pages(b) == [("vs none-paper", pair_page)]
    assert main(["tables", "--runs", str(a.parents[2]), "--out", str(tmp_path / "tables")]) == 0
    out = tmp_path / "tables" / "mini"
    md = (out / "alignvid.md").read_text()
    links = re.findall(r"^- Wan 2\.1, ([^:]+): (.*)$", md, re.M)
    assert [row for row, _ in links] == ["baseline", "+ AlignVid"]
    targets = [[(label, (out / unquote(href)).resolve()) for label, href in re.findall(r"\[([^\]]+)\]\(([^)]+)\)", cell)]
               for _, cell in links]
    assert targets == [[("samples", (a / "browse" / "index.html").resolve())], [("vs none-paper", pair_page.resolve())]]
    baselines = (out / "baselines.md").read_text()
    assert "+ AlignVid" not in baselines and baselines.count("](../") == 1  # its one run row, baseline

    board = tmp_path / "board"
    (board / "entries").mkdir(parents=True)
    for name in ("with-page", "without"):
        entry = {**make_entry(name, 50.0, 50.0, smoke=True), "run_dir": f"runs/{name}"}
        (board / "entries" / f"{name}.json").write_text(json.dumps(entry))
    (board / "runs" / "with-page" / "browse").mkdir(parents=True)
    (board / "runs" / "with-page" / "browse" / "index.html").write_text("page")
    rebuild_leaderboard(board, paper_dir=None)
    page = (board / "index.html").read_text()
    assert page.count('class="browse"') == 1 and 'href="runs/with-page/browse/index.html"' in page


def test_copied_videos_make_a_folder_that_stands_alone(pair, tmp_path):
    a, b, _, _ = pair
    page, data = build_page(a, b, tmp_path / "site", copy_videos=True)
    moved = tmp_path / "published"
    shutil.move(tmp_path / "site", moved)  # publish the folder elsewhere: every link still resolves inside it
    links = [s["image"] for s in data["samples"]] + [r["video"] for s in data["samples"] for r in s["runs"] if r["video"]]
    assert len(links) == 12 + 23
    for link in links:
        target = (moved / unquote(link)).resolve()
        assert target.is_file() and moved.resolve() in target.parents
    copied = moved / "videos" / "B" / "mini_0.mp4"
    assert copied.read_bytes() == (b / "videos" / "mini_0.mp4").read_bytes()


def test_embedded_json_cannot_leave_its_script_block():
    value = {"reply": "</script><script>alert(1)</script><!-- \u2028\u2029 & <b>", "n": [1, 2.5, None]}
    text = embed_json(value)
    assert "<" not in text and ">" not in text and "&" not in text
    assert "\u2028" not in text and "\u2029" not in text
    assert json.loads(text) == value


def test_unfinished_run_still_builds_and_marks_what_is_missing(tmp_path, capsys):
    """No summary (its stage never ran), scores never computed, the judge stopped after 5 records, two videos
    missing (one generation failed): the page builds and says so, per run and per sample."""
    run, _ = make_run(tmp_path, "wan2.1", "none", "paper", seed=3)
    records = [r for r in read_jsonl(run / "judge.jsonl") if r["mode"] == "parity"][1::2][:5]  # the latest lines
    (run / "judge.jsonl").unlink()
    append_jsonl(run / "judge.jsonl", records)
    for name in ("summary.json", "samples.csv", "scores.jsonl"):
        (run / name).unlink()
    append_jsonl(run / "generation.jsonl", [{"sample_id": "mini_2", "status": "failed", "error": "CUDA OOM"}])
    write_videos(run, [i for i in BENCH.ids if i not in ("mini_2", "mini_4")])
    assert main(["browse", str(run), "--out", str(tmp_path / "page")]) == 0
    out = capsys.readouterr().out
    assert "no summary.json" in out and "2 video(s) missing" in out
    data = page_json(tmp_path / "page" / "index.html")
    judged = {(r["sample_id"], r["question_id"]) for r in records}
    n_questions = sum(map(len, QUESTIONS.values()))
    assert data["runs"][0]["missing"] == [
        "no summary.json: the summary stage has not run", "no scores: the score stage has not run",
        "2 video(s) missing", f"{n_questions - 5} question(s) without a verdict"]
    cells = {s["id"]: s["runs"][0] for s in data["samples"]}
    assert cells["mini_2"]["video"] is None and "generation failed: CUDA OOM" in cells["mini_2"]["video_note"]
    assert cells["mini_4"]["video"] is None and cells["mini_4"]["video_note"] == "video file missing (generation.jsonl: ok)"
    for sid, qids in QUESTIONS.items():
        for qid, v in zip(qids, cells[sid]["verdicts"], strict=True):
            assert (v["state"] != "unjudged") == ((sid, qid) in judged)
            assert v["state"] != "unjudged" or v["note"] == "not judged"
        assert cells[sid]["scores"] == {}
    # without any judge log at all: every question is marked, and the page still builds
    (run / "judge.jsonl").unlink()
    data = build_page(run, out=tmp_path / "page2")[1]
    assert "no judge log: the judge stage has not run" in data["runs"][0]["missing"]
    assert {v["note"] for s in data["samples"] for v in s["runs"][0]["verdicts"]} == {"no judge log"}


def test_bad_input_is_one_named_error(pair, tmp_path, capsys):
    a, _, _, _ = pair
    assert main(["browse", str(tmp_path / "nowhere")]) == 2
    assert "nowhere: not a folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["browse", str(tmp_path / "empty")]) == 2
    assert "config.yaml: missing" in capsys.readouterr().err
    with pytest.raises(SetupError, match="is the run folder"):
        build_page(a, out=a / "videos")
    summary = json.loads((a / "summary.json").read_text())
    copy = tmp_path / "other"
    shutil.copytree(a, copy, ignore=shutil.ignore_patterns("videos", "browse"))
    summary["benchmark"]["hash"] = "sha256:" + "1" * 64
    (copy / "summary.json").write_text(json.dumps(summary))
    assert main(["browse", str(copy), "--out", str(tmp_path / "p")]) == 2
    assert "the run was made on benchmark sha256:1111" in capsys.readouterr().err


def test_pair_over_different_selections(pair, tmp_path):
    """B made on 5 of A's 12 samples: the page shows those 5 and names the 7 left out; a B whose sample of the
    same id has another prompt (another benchmark) is refused."""
    import yaml

    a, _, _, _ = pair
    b = tmp_path / "b"
    shutil.copytree(a, b, ignore=shutil.ignore_patterns("browse", "summary.json", "samples.csv"))
    config = yaml.safe_load((b / "config.yaml").read_text())
    config["data"]["ids"] = BENCH.ids[:5]
    (b / "config.yaml").write_text(yaml.safe_dump(config))
    data = build_page(a, b, tmp_path / "page")[1]
    assert [s["id"] for s in data["samples"]] == BENCH.ids[:5] and data["left_out"] == {"A": BENCH.ids[5:]}
    root = tmp_path / "bench"
    shutil.copytree(BENCH.root, root)
    records = json.loads((root / "meta.json").read_text())
    records[0]["prompt"] += " (edited)"
    (root / "meta.json").write_text(json.dumps(records))
    config["data"] = {"source": "local", "root": str(root)}
    (b / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(SetupError, match="sample 'mini_0' differs"):
        build_page(a, b, tmp_path / "page")


def test_extra_judge_verdicts(pair, tmp_path, capsys):
    """--judge NAME shows the verdicts `omiti2v rejudge` wrote to judges/NAME/judge.jsonl, in the run's mode."""
    a, _, _, _ = pair
    copy = tmp_path / "run"
    shutil.copytree(a, copy, ignore=shutil.ignore_patterns("browse"))
    assert main(["browse", str(copy), "--judge", "other", "--out", str(tmp_path / "p")]) == 2
    assert "judges/other/judge.jsonl: missing" in capsys.readouterr().err
    records = [{**r, "correct": r["sample_id"] != "mini_0", "judge_model": "hub/other"}
               for r in read_jsonl(copy / "judge.jsonl")]
    append_jsonl(copy / "judges" / "other" / "judge.jsonl", records)
    data = build_page(copy, out=tmp_path / "p", judge="other")[1]
    assert data["runs"][0]["judge"] == "other (extra judge)" and data["runs"][0]["judge_mode"] == "parity"
    states = {s["id"]: {v["state"] for v in s["runs"][0]["verdicts"]} for s in data["samples"]}
    assert states == {sid: {"wrong" if sid == "mini_0" else "right"} for sid in BENCH.ids}


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


def launch(pw):
    executable = str(CHROMIUM if CHROMIUM.exists() else shutil.which("chromium"))
    return pw.chromium.launch(executable_path=executable, args=[
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"])


def open_page(browser, path: Path, errors: list[str]):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(path.as_uri())
    return page


def card(sid: str) -> str:
    return f'article[id="sample-{sid}"]'


@needs_chromium
def test_pair_page_in_headless_chromium(pair, pair_page):
    from playwright import sync_api  # a dev dependency: missing it is a failure, not a skip

    _, _, truth_a, truth_b = pair
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
                .every(v => !v.paused && v.currentTime > 0.3 && v.videoWidth === 64)""", timeout=10000)
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
         "data.ids=[mini_1,mini_3]", "asm=none,scalar"], capture_output=True, text=True, cwd=REPO, timeout=600)
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
            assert {m: c["value"] for m, c in cell["scores"].items()} == {
                m: scores[(s["id"], m)] for m in ("dynamic_degree", "aesthetic_quality")}
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
                .every(v => v.readyState >= 2 && v.videoWidth > 0 && (v.currentTime > 0 || v.ended))""", timeout=10000)
        finally:
            browser.close()
    assert errors == []
