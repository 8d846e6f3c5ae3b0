"""`omiti2v browse`: the page's data against the records it was built from (verdicts, scores of any scorer,
missing videos and verdicts, an extra judge, pairs over different selections), its links (videos linked or
copied, images, the tables, the leaderboard), the JSON embedding, and one named error for bad input. The page
in a browser: test_browse_chromium.py."""

from __future__ import annotations

import json
import re
import shutil
from urllib.parse import unquote

import pytest
from browse_fixtures import (
    BENCH,
    EXTRA_METRIC,
    MISSING_IN_B,
    QUESTIONS,
    changes,
    make_pair,
    page_json,
    write_videos,
)
from report_fixtures import make_run

from omiti2v.browse import existing_pages
from omiti2v.browse.page import build_page, embed_json
from omiti2v.cli import main
from omiti2v.errors import SetupError
from omiti2v.runs import append_jsonl, read_jsonl


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    return make_pair(tmp_path_factory.mktemp("runs"))


def test_pair_page_data_follows_the_records(pair):
    a, b, truth_a, truth_b, pair_page = pair
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


def test_pages_are_found_by_the_tables_and_the_leaderboard(pair, tmp_path):
    """`omiti2v tables` links each run row to the pages built at their default places (relative to the table);
    the leaderboard links an entry to the page in its run folder, only where one was built."""
    from test_leaderboard_board import make_entry

    from omiti2v.leaderboard.board import rebuild_leaderboard

    a, b, _, _, pair_page = pair
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
    a, b, _, _, _ = pair
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
    a, _, _, _, _ = pair
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

    a, _, _, _, _ = pair
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
    a, _, _, _, _ = pair
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
