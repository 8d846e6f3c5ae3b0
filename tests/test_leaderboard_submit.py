"""A valid tiny submission end to end (intake, tiny judge, tiny scorers, summary, entry, leaderboard), and the
CLI's one-line rejection that leaves nothing behind."""

from __future__ import annotations

import argparse
import hashlib
import json
import zipfile

import pandas as pd
import pytest
from test_leaderboard_intake import IDS, write_submission

from omiti2v.data import load_benchmark
from omiti2v.leaderboard.board import validate_entry
from omiti2v.leaderboard.cli import register
from omiti2v.runs import RunDir
from omiti2v.summary import judge_frame, read_sample_table

TINY = ["--data", "mini", "--judge", "tiny", "--scorer", "tiny", "--min-frames", "4", "--min-side", "32"]


def cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="omiti2v")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_rejection_is_one_line_and_leaves_nothing(tmp_path, capsys):
    sub = write_submission(tmp_path / "sub")
    archive = tmp_path / "slip.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for p in sorted(sub.iterdir()):
            zf.write(p, p.name if p.name != "mini_3.mp4" else "../../mini_3.mp4")
    board = tmp_path / "board"
    assert cli(["submit", str(archive), "--leaderboard", str(board), "--validate-only", *TINY]) == 2
    out = capsys.readouterr().out.strip()
    assert out.startswith("rejected: ") and "'..'" in out and "\n" not in out
    assert not board.exists() and not (tmp_path.parent / "mini_3.mp4").exists()
    assert cli(["submit", str(sub), "--leaderboard", str(board), "--validate-only", *TINY]) == 0
    assert "valid: 12 videos" in capsys.readouterr().out and not board.exists()


@pytest.mark.slow
def test_valid_tiny_submission_end_to_end(tmp_path, capsys):
    sub = write_submission(tmp_path / "sub", frames=6)
    board = tmp_path / "board"
    assert cli(["submit", str(sub), "--leaderboard", str(board), "--name", "Tiny Test!", *TINY]) == 0
    assert "entry tiny-test" in capsys.readouterr().out

    entry = json.loads((board / "entries" / "tiny-test.json").read_text())
    validate_entry(entry)
    assert entry["smoke"] is True and entry["comparable"] is False
    assert entry["data"]["n_samples"] == 12 and entry["videos"]["count"] == 12 and entry["videos"]["num_frames"] == [6, 6]
    run = RunDir(board / entry["run_dir"])
    lines = "".join(f"{i} {hashlib.sha256(run.video(i).read_bytes()).hexdigest()}\n" for i in sorted(IDS))
    assert entry["hashes"]["videos"] == "sha256:" + hashlib.sha256(lines.encode()).hexdigest()
    # the entry's numbers are the judge's verdicts on these videos, macro over samples
    frame = judge_frame(run, load_benchmark("mini"), entry["evaluation"]["judge_mode"])
    assert entry["metrics"]["overall"]["value"] == pytest.approx(100 * frame.groupby("sample_id")["correct"].mean().mean())
    assert entry["metrics"]["overall"]["n"] == 12 and entry["metrics"]["dynamic_degree"]["n"] == 12
    assert not (board / "staging").exists()
    # evaluated as any run is (judge, score, summary stages): the summary stage's files, no ASM of ours
    summary = json.loads(run.summary.read_text())
    assert summary["run"]["asm"] == "submission" and summary["resolved_asm"] is None
    assert summary["models"]["generator"] == "submission:" + entry["submission"]["model"]
    assert list(read_sample_table(run.samples).index) == list(IDS)

    table = pd.read_csv(board / "leaderboard.csv")
    assert table.loc[table["name"] == "tiny-test", "overall"].iloc[0] == pytest.approx(entry["metrics"]["overall"]["value"])
    assert (table["kind"] == "paper").sum() == 10
    assert "tiny-test" in (board / "index.html").read_text()

    before = sorted(p for p in board.rglob("*"))
    assert cli(["submit", str(sub), "--leaderboard", str(board), "--name", "tiny-test", *TINY]) == 2
    assert "already exists" in capsys.readouterr().out
    assert sorted(p for p in board.rglob("*")) == before
