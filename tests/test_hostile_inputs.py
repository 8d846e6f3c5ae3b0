"""Crafted (hostile) inputs against the real command lines, each group in one subprocess whose peak RSS is
measured: every case ends in its named error (or its documented acceptance) with the documented exit code,
no traceback, and nothing written outside the temporary root's expected folders.

Exit codes: `validate-data` 0 valid / 1 invalid; `submit --validate-only` 0 valid / 2 rejected;
`leaderboard` 0 (bad entries are skipped with a warning naming the file); runners 2 on a setup error.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import hostile_inputs as hostile
import pytest

from omiti2v.data import MINI_ROOT

REPO = Path(__file__).resolve().parents[1]
PEAK_RSS_LIMIT_KB = 2 * 1024 * 1024  # 2 GiB per group of cases
# Runs the command as a child and reports the child's peak RSS (RUSAGE_CHILDREN of this small parent).
MEASURE = ("import resource, subprocess, sys; rc = subprocess.call(sys.argv[1:]); "
           "sys.stderr.write('\\nPEAK_RSS_KB=%d\\n' % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
           "sys.exit(rc)")


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """The temporary root: inputs/, the sentinel outside/ that traversals aim at, secrets beside it."""
    root = tmp_path_factory.mktemp("hostile")
    (root / "outside").mkdir()
    (root / "tmp").mkdir()
    shutil.copy(MINI_ROOT / hostile.RECORD["image-path"], root / "secret.png")
    (root / "secret.json").write_text(json.dumps(hostile.entry("secret")))
    return root


def run_measured(cmd: list[str], root: Path, **env) -> tuple[subprocess.CompletedProcess, int]:
    environ = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'tests'}", "TMPDIR": str(root / "tmp"),
               "OMITI2V_RESULTS": str(root / "results"), **env}
    proc = subprocess.run([sys.executable, "-c", MEASURE, *cmd], cwd=root, env=environ, capture_output=True,
                          text=True, timeout=300)
    peak = int(re.search(r"PEAK_RSS_KB=(\d+)", proc.stderr).group(1))
    assert peak < PEAK_RSS_LIMIT_KB, f"peak RSS {peak / 1024:.0f} MiB above the bound: {cmd[:4]}"
    return proc, peak


def files_outside(root: Path, allowed: tuple[str, ...]) -> list[Path]:
    """Files under the root not in an expected folder, plus anything in the sentinel outside/ folder."""
    bad = [p for p in root.rglob("*") if not p.is_dir() and p.relative_to(root).parts[0] not in allowed]
    return bad + list((root / "outside").rglob("*"))


def assert_clean(output: str) -> None:
    assert "Traceback (most recent call last)" not in output, output[-3000:]


def test_crafted_benchmark_copies(root):
    cases = hostile.meta_cases(root / "inputs" / "meta", root / "outside")
    proc, _ = run_measured([sys.executable, "-m", "omiti2v.cli", "validate-data", *(str(c.path) for c in cases)], root)
    assert_clean(proc.stdout + proc.stderr)
    assert proc.returncode == 1, proc.stderr
    # one block per root: its error lines, then "... the benchmark at ROOT is not valid" (or "ROOT: valid, ...")
    blocks, lines = {}, []
    for line in proc.stdout.splitlines():
        lines.append(line)
        invalid = re.search(r"the benchmark at (.+) is not valid$", line)
        valid = re.match(r"^(/\S+): valid, ", line)
        if invalid or valid:
            blocks[(invalid or valid).group(1)] = ("\n".join(lines), 1 if invalid else 0)
            lines = []
    assert len(cases) >= 35
    for case in cases:
        text, rc = blocks[str(case.path)]
        assert rc == case.rc and re.search(case.expected, text), f"{case.name}: {text[-600:]}"
        assert all(len(line) < 2000 for line in text.splitlines()), f"{case.name}: unbounded message"
    assert files_outside(root, ("inputs", "tmp", "secret.png", "secret.json")) == []


@pytest.fixture(scope="module")
def submissions(root) -> list[hostile.Case]:
    base = root / "inputs" / "submissions"
    base.mkdir(parents=True)
    return hostile.submission_cases(base, hostile.submission_folder(base / "valid"))


def test_crafted_submissions_validate_only(root, submissions):
    board = root / "board"
    taken = root / "board-taken"
    (taken / "entries").mkdir(parents=True)
    (taken / "entries" / "tiny-test-baseline.json").write_text("{}")
    limits = ["--data", "mini", "--min-frames", "4", "--min-side", "32"]
    batch = [{"name": c.name, "argv": ["submit", str(c.path), "--validate-only", "--leaderboard", str(board), *limits]}
             for c in submissions]
    batch.append({"name": "name_taken", "argv": ["submit", str(submissions[0].path), "--validate-only",
                                                  "--leaderboard", str(taken), *limits]})
    (root / "inputs" / "batch.json").write_text(json.dumps(batch))
    proc, _ = run_measured([sys.executable, str(REPO / "tests" / "cli_batch.py"), str(root / "inputs" / "batch.json"),
                            str(root / "inputs" / "batch.jsonl")], root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = {r["name"]: r for r in map(json.loads, (root / "inputs" / "batch.jsonl").read_text().splitlines())}
    expected = {c.name: (c.expected, c.rc) for c in submissions} | {"name_taken": ("already exists", 2)}
    assert len(expected) >= 45
    for name, (pattern, rc) in expected.items():
        r = results[name]
        assert_clean(r["stderr"])
        assert r["rc"] == rc and re.search(pattern, r["stdout"], re.M), f"{name}: rc {r['rc']}: {r['stdout'][-800:]}"
        assert "staging" not in r["stdout"], f"{name}: the message names the private staging folder"
        if rc == 2:
            assert all(line.startswith("rejected: ") for line in r["stdout"].splitlines()), f"{name}: {r['stdout']}"
    assert not board.exists() or not any(board.rglob("*")), "validate-only left files behind"
    assert files_outside(root, ("inputs", "tmp", "board-taken", "secret.png", "secret.json")) == []


def test_crafted_leaderboard_entries(root):
    board = root / "leaderboard"
    cases = hostile.entry_cases(board / "entries", root / "outside")
    proc, _ = run_measured([sys.executable, "-m", "omiti2v.cli", "leaderboard", "--leaderboard", str(board)], root)
    assert_clean(proc.stdout + proc.stderr)
    assert proc.returncode == 0, proc.stderr
    for case in cases:
        assert re.search(re.escape(f"skipping leaderboard entry {case.path}"), proc.stderr), f"{case.name}: {proc.stderr}"
    rows = list(csv.DictReader((board / "leaderboard.csv").open()))
    submitted = {r["name"]: r for r in rows if r["kind"] == "submission"}
    assert set(submitted) == {"good-formula", "good-at"}  # every bad file skipped, the good ones kept
    assert submitted["good-formula"]["model"].startswith("'=") and submitted["good-at"]["model"].startswith("'@")
    page = (board / "index.html").read_text()
    assert "NaN" not in page and "Infinity" not in page and "\u202e" not in page and "secret" not in page
    assert files_outside(root, ("inputs", "tmp", "leaderboard", "board-taken", "secret.png", "secret.json")) == []


def test_runner_refuses_traversal_ids_before_writing(root):
    """The smoke eval on a copy whose ids escape stops with exit 2 before any video or sidecar."""
    escape = "../" * 12 + str(root / "outside" / "ESCAPED").lstrip("/")
    bad_ids = [escape, "a/b", "a\\b", "..", "/abs/x", "nul\x00", "", "a" * 300]
    records = [{**hostile.RECORD, "id": i} for i in bad_ids] + [hostile.RECORD, {**hostile.RECORD, "id": "MINI_0"}]
    data = hostile.dataset_root(root / "inputs" / "runner-data", records)
    proc, _ = run_measured([sys.executable, str(REPO / "runners" / "eval.py"), "--config-name", "smoke", "data=local",
                            f"data.root={data}", "data.limit=2"], root)
    assert_clean(proc.stdout + proc.stderr)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    for index in range(len(bad_ids)):
        assert f"record {index} " in proc.stderr and "not a safe file name" in proc.stderr
    assert "duplicate id (first used by record 8" in proc.stderr
    written = [p for p in (root / "results").rglob("*") if p.is_file() and ".hydra-logs" not in p.parts]
    assert written == [] and list((root / "outside").rglob("*")) == []
