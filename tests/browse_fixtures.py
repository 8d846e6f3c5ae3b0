"""Shared by the browse tests: two runs of the mini set with seeded verdicts and real tiny videos, the page's
embedded data, and headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from report_fixtures import make_run

from omiti2v.cli import main
from omiti2v.data import load_benchmark
from omiti2v.runs import RunDir, append_jsonl
from omiti2v.video import write_video

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


def make_pair(root: Path) -> tuple[Path, Path, dict, dict, Path]:
    """Runs A (no ASM) and B (scalar) of the mini set with seeded verdicts; B lacks one video; both carry a
    scorer beyond the paper's; and their page. Returns (A, B, truth A, truth B, page)."""
    a, truth_a = make_run(root, "wan2.1", "none", "paper", seed=1)
    b, truth_b = make_run(root, "wan2.1", "scalar", "paper", seed=2)
    write_videos(a, BENCH.ids)
    write_videos(b, [i for i in BENCH.ids if i != MISSING_IN_B])
    add_scores(a, EXTRA_METRIC, 0.5)
    add_scores(b, EXTRA_METRIC, 0.7)
    assert main(["browse", str(a), str(b)]) == 0
    return a, b, truth_a, truth_b, b / "browse" / "vs-none-paper" / "index.html"


def changes(truth_a: dict, truth_b: dict, kind: str) -> dict[str, int]:
    """sample -> questions that went wrong -> right ("fixed") or right -> wrong ("broken") from A to B."""
    out: dict[str, int] = {}
    for key, right_a in truth_a["correct"].items():
        right_b = truth_b["correct"][key]
        if (kind == "fixed" and not right_a and right_b) or (kind == "broken" and right_a and not right_b):
            out[key[0]] = out.get(key[0], 0) + 1
    return out


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
