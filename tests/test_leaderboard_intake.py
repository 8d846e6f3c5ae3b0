"""Hostile and valid submissions through the intake (staging + validation + run folder), no stages needed."""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from hostile_inputs import METADATA, zip_of

from omiti2v.data import load_benchmark
from omiti2v.leaderboard.archive import IntakeLimits, SubmissionRejected
from omiti2v.leaderboard.submit import intake
from omiti2v.leaderboard.validate import VideoLimits
from omiti2v.video import write_video

IDS = load_benchmark("mini").ids
VIDEO_LIMITS = VideoLimits(min_frames=4, min_side=32)
LIMITS = IntakeLimits(max_files=len(IDS) + 1, max_file_bytes=1 << 20, max_total_bytes=8 << 20)


def write_submission(folder: Path, ids=IDS, frames: int = 4) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, sid in enumerate(ids):
        pixels = np.random.default_rng(i).integers(0, 255, (frames, 48, 64, 3), dtype=np.uint8)
        write_video(folder / f"{sid}.mp4", pixels, fps=8)
    (folder / "submission.yaml").write_text(yaml.safe_dump(METADATA))
    return folder


@pytest.fixture(scope="module")
def valid_folder(tmp_path_factory) -> Path:
    return write_submission(tmp_path_factory.mktemp("valid") / "sub")


def files_under(path: Path) -> list[Path]:
    return [p for p in path.rglob("*") if not p.is_dir()] if path.exists() else []


def assert_rejected(source: Path, tmp_path: Path, match: str, limits: IntakeLimits = LIMITS) -> str:
    board = tmp_path / "board"
    with pytest.raises(SubmissionRejected, match=match) as info:
        intake(source, IDS, board, limits, VIDEO_LIMITS, None, False)
    message = str(info.value)
    assert all("\n" not in problem for problem in info.value.problems)  # one line per problem
    assert "staging" not in message, "a message names the private staging folder"
    assert files_under(board) == [], "a rejected submission left files behind"
    assert not board.exists() or not any(board.rglob("*"))
    return message


def test_valid_folder_and_zip_are_accepted(valid_folder, tmp_path):
    board = tmp_path / "board"
    name, run, staged = intake(valid_folder, IDS, board, LIMITS, VIDEO_LIMITS, None, False)
    assert name == "tiny-test-baseline"
    assert sorted(p.name for p in run.videos.iterdir()) == sorted(f"{i}.mp4" for i in IDS)
    assert staged.video_info["mini_0"]["num_frames"] == 4 and staged.video_info["mini_0"]["width"] == 64
    assert not (board / "staging").exists()
    # the same submission zipped inside one wrapping folder, under another name
    archive = tmp_path / "wrapped.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for p in sorted(valid_folder.iterdir()):
            zf.write(p, f"my_submission/{p.name}")
    name2, run2, _ = intake(archive, IDS, board, LIMITS, VIDEO_LIMITS, "second", False)
    assert name2 == "second" and len(list(run2.videos.glob("*.mp4"))) == len(IDS)
    # an existing entry is not silently replaced
    with pytest.raises(SubmissionRejected, match="already exists"):
        intake(archive, IDS, board, LIMITS, VIDEO_LIMITS, "second", False)


def test_zip_slip_rejected(valid_folder, tmp_path):
    archive = zip_of(valid_folder, tmp_path / "slip.zip", [("../evil.mp4", b"x" * 100)], skip={"mini_0.mp4"})
    assert_rejected(archive, tmp_path, r"'\.\.'")
    assert not (tmp_path / "evil.mp4").exists()


def test_absolute_path_rejected(valid_folder, tmp_path):
    target = tmp_path / "abs_evil.mp4"
    archive = zip_of(valid_folder, tmp_path / "abs.zip", [(zipfile.ZipInfo(str(target)), b"x")], skip={"mini_0.mp4"})
    assert_rejected(archive, tmp_path, "absolute path")
    assert not target.exists()


def test_zip_symlink_rejected(valid_folder, tmp_path):
    link = zipfile.ZipInfo("mini_0.mp4")
    link.create_system = 3
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    archive = zip_of(valid_folder, tmp_path / "link.zip", [(link, b"/etc/passwd")], skip={"mini_0.mp4"})
    assert_rejected(archive, tmp_path, "symlink")


def test_folder_symlink_rejected(valid_folder, tmp_path):
    folder = tmp_path / "linked"
    folder.mkdir()
    for p in valid_folder.iterdir():
        (folder / p.name).write_bytes(p.read_bytes())
    (folder / "mini_0.mp4").unlink()
    (folder / "mini_0.mp4").symlink_to(valid_folder / "mini_0.mp4")
    assert_rejected(folder, tmp_path, "symlink")


def test_bomb_rejected_by_declared_size(valid_folder, tmp_path):
    archive = zip_of(valid_folder, tmp_path / "bomb.zip", [("mini_0.mp4", b"\0" * (4 << 20))], skip={"mini_0.mp4"})
    assert archive.stat().st_size < 200_000  # small archive, large content
    assert_rejected(archive, tmp_path, "declared size")


def test_bomb_rejected_by_total_size(valid_folder, tmp_path):
    limits = IntakeLimits(max_files=len(IDS) + 1, max_file_bytes=1 << 20, max_total_bytes=20_000)
    assert_rejected(zip_of(valid_folder, tmp_path / "big.zip"), tmp_path, "total size", limits)


def test_bomb_with_lying_sizes_rejected(valid_folder, tmp_path):
    """Headers claim 1 KiB, the stream inflates to 4 MiB: cut off while counting actual bytes."""
    archive = zip_of(valid_folder, tmp_path / "liar.zip", [("mini_0.mp4", b"\0" * (4 << 20))], skip={"mini_0.mp4"})
    data = bytearray(archive.read_bytes())
    real = (4 << 20).to_bytes(4, "little")
    fake = (1024).to_bytes(4, "little")
    n = data.count(real)
    assert n == 2  # local header and central directory entry
    archive.write_bytes(bytes(data).replace(real, fake))
    assert zipfile.ZipFile(archive).getinfo("mini_0.mp4").file_size == 1024
    assert_rejected(archive, tmp_path, "cannot be extracted|larger than|exceeds")


def test_too_many_files_rejected(valid_folder, tmp_path):
    extra = [(f"junk_{i}.mp4", b"x") for i in range(5)]
    assert_rejected(zip_of(valid_folder, tmp_path / "many.zip", extra), tmp_path, "too many files")


def test_wrong_ids_rejected(valid_folder, tmp_path):
    archive = zip_of(valid_folder, tmp_path / "wrong.zip", [("mini_99.mp4", (valid_folder / "mini_0.mp4").read_bytes())],
                     skip={"mini_0.mp4"})
    message = assert_rejected(archive, tmp_path, "unexpected ids")
    assert "mini_99" in message and "missing ids ['mini_0']" in message


def test_duplicate_members_rejected(valid_folder, tmp_path):
    with pytest.warns(UserWarning, match="Duplicate name"):
        archive = zip_of(valid_folder, tmp_path / "dup.zip", [("mini_1.mp4", (valid_folder / "mini_1.mp4").read_bytes())],
                         skip={"mini_0.mp4"})
    assert_rejected(archive, tmp_path, "duplicate file mini_1.mp4")


def test_non_video_content_rejected(valid_folder, tmp_path):
    fake = zip_of(valid_folder, tmp_path / "fake.zip", [("mini_0.mp4", b"#!/bin/sh\necho not a video\n" * 10)],
                  skip={"mini_0.mp4"})
    assert_rejected(fake, tmp_path, "mini_0.mp4: not an MP4 video")
    text = zip_of(valid_folder, tmp_path / "text.zip", [("readme.txt", b"hello")], skip={"mini_0.mp4"})
    assert_rejected(text, tmp_path, "readme.txt: not a video")
    broken = zip_of(valid_folder, tmp_path / "broken.zip", [("mini_0.mp4", b"\0\0\0\x18ftypisom" + b"\x13" * 5000)],
                    skip={"mini_0.mp4"})
    assert_rejected(broken, tmp_path, "mini_0.mp4: not decodable")


def test_video_bounds_and_metadata_rejected(valid_folder, tmp_path):
    short = write_submission(tmp_path / "short", frames=2)
    assert_rejected(short, tmp_path, "2 frames, expected 4")
    big_side = IntakeLimits(LIMITS.max_files, LIMITS.max_file_bytes, LIMITS.max_total_bytes)
    with pytest.raises(SubmissionRejected, match="width 64 px"):
        intake(valid_folder, IDS, tmp_path / "b2", big_side, VideoLimits(min_frames=4, min_side=100), None, False)
    assert files_under(tmp_path / "b2") == []
    no_meta = zip_of(valid_folder, tmp_path / "nometa.zip", skip={"submission.yaml"})
    assert_rejected(no_meta, tmp_path, "submission.yaml: missing")
    bad_meta = zip_of(valid_folder, tmp_path / "badmeta.zip", [("submission.yaml", b"model: x\nmethod: y\n")],
                      skip={"submission.yaml"})
    assert_rejected(bad_meta, tmp_path, "missing field 'parameters'")
