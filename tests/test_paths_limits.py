"""The confinement helper, strict JSON writes and the video budget, in-process."""

from __future__ import annotations

import math

import hostile_inputs as hostile
import numpy as np
import pytest

from omiti2v.paths import UnsafePathError, confined, stem_problem
from omiti2v.runs import RunDir, append_jsonl, atomic_write_json
from omiti2v.video import VideoBudget, VideoTooLargeError, probe_video, read_video, write_video


@pytest.mark.parametrize("sid", ["../x", "/abs", "a/../../b", "a\\b", "", "nul\x00"])
def test_run_dir_refuses_ids_that_leave_the_videos_folder(tmp_path, sid):
    run = RunDir(tmp_path / "run")
    with pytest.raises(UnsafePathError):
        confined(run.videos, sid) if sid in ("", "nul\x00") else run.video(sid)


def test_confined_follows_symlinks(tmp_path):
    (tmp_path / "root").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "root" / "link").symlink_to(tmp_path / "elsewhere")
    assert confined(tmp_path / "root", "a", "b.json") == tmp_path / "root" / "a" / "b.json"
    with pytest.raises(UnsafePathError, match="resolves outside"):
        confined(tmp_path / "root", "link", "x.mp4")


def test_stem_rule():
    assert stem_problem("mini_0") is None and stem_problem("a.b-c_9") is None
    assert "128" in stem_problem("a" * 129) and "start with" in stem_problem(".x") and stem_problem("a b")


def test_json_writers_refuse_nan(tmp_path):
    with pytest.raises(ValueError, match="JSON compliant"):
        atomic_write_json(tmp_path / "x.json", {"value": math.nan})
    with pytest.raises(ValueError):
        append_jsonl(tmp_path / "x.jsonl", [{"value": math.inf}])


def test_video_budget_refuses_before_decoding(tmp_path):
    big = hostile.encode(tmp_path / "big.mp4", 8, 2048, 2048)
    with pytest.raises(VideoTooLargeError, match="2048x2048 px"):
        read_video(big)
    with pytest.raises(VideoTooLargeError, match="2048x2048 px"):
        probe_video(big)
    small = write_video(tmp_path / "small.mp4", np.zeros((6, 32, 48, 3), np.uint8), fps=8)
    budget = VideoBudget(max_decoded_bytes=4 * 32 * 48 * 3)
    assert read_video(small, [0, 5], budget)[0].shape == (2, 32, 48, 3)
    with pytest.raises(VideoTooLargeError, match="decoding 6 frames"):
        read_video(small, None, budget)
