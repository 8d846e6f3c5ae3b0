"""Bounds that hold before any check passes, storage errors and signals that leave no debris, decoding fallbacks
and messages that say what is wrong: in-process, with the filesystem's refusals simulated by monkeypatching
(tests may run as root, for whom a read-only folder is writable)."""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from types import SimpleNamespace

import hostile_inputs as hostile
import numpy as np
import pytest

import omiti2v.runs
import omiti2v.safeload as safeload
from omiti2v.cli import main
from omiti2v.leaderboard.archive import IntakeLimits, SubmissionRejected, stage_submission
from omiti2v.safeload import ParseError, json_depth, read_json
from omiti2v.video import VideoTooLargeError, probe_video, read_video

REPO = Path(__file__).resolve().parents[1]
LIMITS = ["--data", "mini", "--min-frames", "4", "--min-side", "32"]


def plain_depth(text: str) -> int:
    """Bracket depth outside strings, one character at a time: the rule json_depth vectorises."""
    deepest = depth = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            escaped, in_string = (False, True) if escaped else (char == "\\", char != '"')
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def random_json(rng: random.Random, level: int = 0):
    pick = rng.random()
    if level > 6 or pick < 0.3:
        return rng.choice(['a\\"[', "\\\\", '"]}', "x" * rng.randint(0, 9), 5, None, '\\\\\\"{', "\u00e9[", "\ud800"])
    if pick < 0.65:
        return [random_json(rng, level + 1) for _ in range(rng.randint(0, 3))]
    return {rng.choice(["[", "k", '\\"{']) + str(i): random_json(rng, level + 1) for i in range(rng.randint(0, 3))}


def test_json_depth_scans_in_chunks_as_the_plain_rule(monkeypatch):
    """Chunks of 7 characters put escapes, quotes and multi-byte characters across every chunk border."""
    monkeypatch.setattr(safeload, "SCAN_CHARS", 7)
    rng = random.Random(0)
    for _ in range(1500):
        text = json.dumps(random_json(rng), ensure_ascii=rng.random() < 0.5)
        assert json_depth(text) == plain_depth(text), text


@pytest.mark.parametrize("text", [json.dumps([{"prompt": "x" * 6_000_000}]),
                                  '[{"prompt": "' + "\\u0041" * 1_000_000 + '"}]'],
                         ids=["one_long_string", "escapes"])
def test_json_depth_needs_constant_memory(text):
    """The depth pre-check of a 50-60 MB meta.json must not cost ~120 bytes per character (a regex over the
    strings did): scratch memory stays under a byte per character here, and flat as the file grows."""
    tracemalloc.start()
    try:
        assert json_depth(text) == 2
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 0.5 * len(text), f"{peak / len(text):.1f} bytes per character"


def test_a_meta_json_that_is_no_regular_file_is_named(tmp_path):
    os.mkfifo(tmp_path / "fifo.json")
    (tmp_path / "folder.json").mkdir()
    for name, kind in (("fifo.json", "a FIFO"), ("folder.json", "a folder")):
        with pytest.raises(ParseError, match=f"not a regular file \\({kind}"):
            read_json(tmp_path / name)  # a FIFO would block a plain open() until a writer came
    with pytest.raises(ParseError, match="not a regular file \\(a character device"):
        read_json("/dev/zero")


def staged_names(board: Path) -> list[str]:
    return sorted(str(p.relative_to(board)) for p in board.rglob("*")) if board.exists() else []


@pytest.fixture(scope="module")
def valid(tmp_path_factory) -> Path:
    return hostile.submission_folder(tmp_path_factory.mktemp("submission") / "valid")


def test_the_total_is_bounded_per_benchmark_id_before_a_byte_is_staged(tmp_path, valid):
    names = [f"{sid}.mp4" for sid in hostile.IDS] + ["submission.yaml"]
    limits = IntakeLimits.for_files(names)
    assert limits.max_total_bytes == 13 * 64 * 2**20 and limits.max_files == 13
    small = IntakeLimits.for_files(names, max_total_bytes=4096)
    with pytest.raises(SubmissionRejected, match="total size .* > limit 4096"):
        stage_submission(valid, tmp_path / "staging" / "x", small)
    assert not (tmp_path / "staging" / "x").exists()


def test_free_space_is_checked_before_staging(tmp_path, valid, monkeypatch, capsys):
    monkeypatch.setattr(omiti2v.runs.shutil, "disk_usage", lambda _: SimpleNamespace(free=1000))
    board = tmp_path / "board"
    assert main(["submit", str(valid), "--validate-only", "--leaderboard", str(board), *LIMITS]) == 2
    err = capsys.readouterr().err
    assert "error: staging the submission needs" in err and "GiB are free there" in err and "Traceback" not in err
    assert staged_names(board) == []


def full_disk(monkeypatch, when):
    """Writes through the `open` of omiti2v.leaderboard.archive raise ENOSPC once `when(path)` holds."""
    import omiti2v.leaderboard.archive as archive

    real_open = open

    class FullDisk:
        def __init__(self, file):
            self.file = file

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.file.close()

        def write(self, data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def fake_open(path, mode="r", *args, **kwargs):
        file = real_open(path, mode, *args, **kwargs)
        return FullDisk(file) if "x" in mode and when(Path(path)) else file

    monkeypatch.setattr(archive, "open", fake_open, raising=False)


@pytest.mark.parametrize("as_zip", [False, True], ids=["folder", "zip"])
def test_a_full_disk_while_staging_is_one_error_line_and_leaves_nothing(tmp_path, valid, monkeypatch, capsys, as_zip):
    source = hostile.zip_of(valid, tmp_path / "s.zip") if as_zip else valid
    full_disk(monkeypatch, lambda path: path.name == "mini_3.mp4")
    board = tmp_path / "board"
    assert main(["submit", str(source), "--validate-only", "--leaderboard", str(board), *LIMITS]) == 2
    out, err = capsys.readouterr()
    assert "rejected" not in out and err.startswith(f"error: cannot write {board / 'staging'}: No space left on device")
    assert len(err.splitlines()) == 1 and staged_names(board) == []


def test_a_read_only_leaderboard_root_is_one_error_line(tmp_path, valid, monkeypatch, capsys):
    board = tmp_path / "board"
    real_mkdir = os.mkdir

    def read_only(path, *args, **kwargs):
        if str(path).startswith(str(board)):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", read_only)
    assert main(["submit", str(valid), "--validate-only", "--leaderboard", str(board), *LIMITS]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot write") and "Read-only file system; the folder is read-only" in err
    assert len(err.splitlines()) == 1 and not board.exists()


def test_a_staging_symlink_is_not_followed(tmp_path, valid, capsys):
    board, elsewhere = tmp_path / "board", tmp_path / "elsewhere"
    board.mkdir()
    elsewhere.mkdir()
    (board / "staging").symlink_to(elsewhere)
    assert main(["submit", str(valid), "--validate-only", "--leaderboard", str(board), *LIMITS]) == 2
    assert "staging: not a folder (a symlink or a file)" in capsys.readouterr().err
    assert list(elsewhere.iterdir()) == []


def test_a_folder_nested_1500_deep_is_refused_at_the_second_level(tmp_path, valid, capsys):
    folder = hostile.copy_of(valid, tmp_path / "deep")
    hostile.nested_folders(folder, 1500)
    try:
        assert main(["submit", str(folder), "--validate-only", "--leaderboard", str(tmp_path / "b"), *LIMITS]) == 2
    finally:
        hostile.remove_nested_folders(folder, 1500)
    out = capsys.readouterr().out
    assert out == f"rejected: {folder}: d/d: files must sit at the top level (or in one wrapping folder)\n"


@pytest.mark.parametrize("where", ["folder_in_the_way", "under_proc"])
def test_an_unwritable_leaderboard_path_is_one_error_line(tmp_path, capsys, where):
    board = tmp_path / "board" if where == "folder_in_the_way" else Path("/proc/self/omiti2v-board")
    if where == "folder_in_the_way":
        (board / "leaderboard.csv").mkdir(parents=True)
    assert main(["leaderboard", "--leaderboard", str(board)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot write {board / 'leaderboard.csv'}: ") and len(err.splitlines()) == 1
    if where == "folder_in_the_way":
        assert "a folder stands where the file goes" in err
        assert sorted(p.name for p in board.iterdir()) == ["leaderboard.csv"]  # no temp file left


@pytest.mark.parametrize("command", ["tables", "plots"])
def test_report_output_under_proc_is_one_error_line(tmp_path, capsys, command):
    (tmp_path / "runs").mkdir()  # no run: the paper's numbers alone are still written
    assert main([command, "--runs", str(tmp_path / "runs"), "--out", "/proc/self/omiti2v-out"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot write /proc/self/omiti2v-out/") and len(err.splitlines()) == 1


def test_leaderboard_from_a_missing_exports_folder_is_an_error(tmp_path, capsys):
    board = tmp_path / "board"
    assert main(["leaderboard", "--from-datasets", str(tmp_path / "typo"), "--leaderboard", str(board)]) == 2
    assert "no such folder" in capsys.readouterr().err and not board.exists()
    (tmp_path / "empty").mkdir()
    assert main(["leaderboard", "--from-datasets", str(tmp_path / "empty"), "--leaderboard", str(board)]) == 2
    assert "holds no export" in capsys.readouterr().err and not board.exists()


# Runs a command with one point made to stall (after it wrote a marker), for the test to signal it there.
STALLING = """
import os, runpy, sys, time
marker, point, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
def stall():
    open(marker, "w").close()
    time.sleep(120)
if point.startswith("fsync:"):
    real_fsync = os.fsync
    def fsync(fd):
        real_fsync(fd)
        if point[6:] in os.readlink(f"/proc/self/fd/{fd}"):
            stall()
    os.fsync = fsync
else:  # the intake moving the videos into the entry's run folder
    import shutil
    real_move = shutil.move
    def move(*args):
        real_move(*args)
        stall()
    shutil.move = move
if argv[0].endswith(".py"):
    sys.argv = argv
    runpy.run_path(argv[0], run_name="__main__")
else:
    from omiti2v.cli import main
    sys.exit(main(argv))
"""


def interrupted(tmp_path: Path, point: str, argv: list[str], signum: int) -> str:
    marker = tmp_path / "stalled"
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'tests'}"}
    proc = subprocess.Popen([sys.executable, "-c", STALLING, str(marker), point, *argv], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while not marker.exists():
        assert proc.poll() is None and time.time() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum, out + err
    assert "Traceback" not in err and err.count("error: ") == 1, err
    assert f"error: interrupted by {signal.Signals(signum).name}" in err
    return err


@pytest.mark.slow
def test_a_signal_during_intake_leaves_no_run_folder_and_no_staging(tmp_path, valid):
    board = tmp_path / "board"
    interrupted(tmp_path, "move", ["submit", str(valid), "--judge", "tiny", "--scorer", "tiny", "--leaderboard",
                                   str(board), *LIMITS], signal.SIGTERM)
    assert staged_names(board) == []  # the half-filled run folder would block the entry name


@pytest.mark.slow
def test_a_signal_during_a_leaderboard_rebuild_leaves_no_temp_file(tmp_path):
    board = tmp_path / "board"
    (board / "entries").mkdir(parents=True)
    (board / "entries" / "a.json").write_text(json.dumps(hostile.entry("a")))
    interrupted(tmp_path, "fsync:/.leaderboard.", ["leaderboard", "--leaderboard", str(board)], signal.SIGINT)
    assert staged_names(board) == ["entries", "entries/a.json"]


@pytest.mark.slow
def test_a_signal_during_the_summary_write_leaves_no_temp_file(tmp_path):
    from test_summary import judge_records

    from omiti2v.data import load_benchmark
    from omiti2v.runs import RunDir, append_jsonl

    run = RunDir(tmp_path / "results" / "runs" / "mini" / "wan2.1-tiny" / "scalar-paper")
    append_jsonl(run.judge_log, judge_records(load_benchmark("mini"), lambda s, q: True))
    interrupted(tmp_path, "fsync:/.summary.", [str(REPO / "runners" / "summary.py"), "--config-name", "smoke",
                                            f"results_root={tmp_path / 'results'}", "device=cpu"], signal.SIGTERM)
    assert sorted(p.name for p in run.path.iterdir() if not p.name.startswith(".hydra")) == [
        "config.yaml", "judge.jsonl", "samples.csv"]  # summary.json was being written: no temp file, no summary


def av1_video(path: Path) -> Path:
    import av

    try:
        av.codec.Codec("libsvtav1", "w")
    except Exception:  # noqa: BLE001 - this FFmpeg build has no AV1 encoder
        pytest.skip("no AV1 encoder (libsvtav1) in this FFmpeg build")
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("libsvtav1", rate=8)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for i in range(8):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.full((64, 64, 3), 20 * i, np.uint8), "rgb24")))
        container.mux(stream.encode())
    return path


def test_a_video_decord_cannot_open_is_read_by_pyav(tmp_path):
    """decord has no AV1 decoder; PyAV must take over in every read (it got budget=None and failed)."""
    import decord

    path = av1_video(tmp_path / "av1.mp4")
    with pytest.raises(decord.DECORDError):
        decord.VideoReader(str(path))
    assert probe_video(path).num_frames == 8
    frames, info = read_video(path, [0, 7])
    assert frames.shape == (2, 64, 64, 3) and abs(int(frames[1].mean()) - 140) < 8 and info.num_frames == 8


def test_a_read_is_bounded_by_its_decoded_bytes(tmp_path):
    """180 frames of 1920x1088 pass every per-side and frame bound but decode to 1076 MiB: refused before decoding."""
    path = hostile.encode(tmp_path / "big.mp4", 180, 1920, 1088)
    with pytest.raises(VideoTooLargeError, match="decoding 180 frames of 1920x1088 takes 1076 MiB \\(at most 1024"):
        read_video(path)
    assert read_video(path, [0])[0].shape == (1, 1088, 1920, 3)
