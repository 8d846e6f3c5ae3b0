"""The official evaluate_i2v.py resize (evaluation/tool_based/ of https://github.com/LAW1223/AlignVid): ratio from the
first video, target sizes by hand, the mp4v re-encode, and the stage recording what the metrics saw."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from omiti2v.context import RunContext
from omiti2v.data import load_benchmark
from omiti2v.runs import RunDir, read_jsonl
from omiti2v.scorers import PaperResize, nearest_paper_ratio, paper_resize_for, paper_target_size, run_scorers
from omiti2v.video import write_video

REPO = Path(__file__).resolve().parents[1]
SOURCES = [(832, 480), (480, 832), (768, 512), (960, 544), (1280, 720), (512, 512)]


@pytest.mark.parametrize(("first", "expected"), [
    # 16:9 first video. Landscape: width max(w, 512), height int(width * 9 / 16); portrait: height
    # max(h, 512), width int(832 * 16 / 9) = int(1479.1) -> stretched to landscape.
    ((1280, 720), [(832, 468), (1479, 832), (768, 432), (960, 540), (1280, 720), (512, 288)]),
    # 1:1 first video (a portrait first video lands on 1:1): square frames, side max(w, 512) or max(h, 512).
    ((480, 832), [(832, 832), (832, 832), (768, 768), (960, 960), (1280, 1280), (512, 512)]),
])
def test_official_target_sizes(first, expected):
    ratio = nearest_paper_ratio(*first)
    assert [paper_target_size(w, h, ratio) for w, h in SOURCES] == expected


@pytest.mark.parametrize(("size", "ratio"), [
    ((832, 480), (16, 9)),   # 1.733: 16:9 is 0.044 away, 5:3 0.067
    ((960, 544), (16, 9)),
    ((768, 512), (3, 2)),
    ((512, 512), (1, 1)),
    ((480, 832), (1, 1)),    # every ratio is landscape: portrait goes to the nearest, 1:1
    ((576, 512), (1, 1)),    # 1.125 is exactly between 1:1 and 5:4: the earlier ratio wins
    ((640, 400), (8, 5)),
])
def test_nearest_ratio_of_the_first_video(size, ratio):
    assert nearest_paper_ratio(*size) == ratio


def _video(path: Path, width: int, height: int, frames: int = 6, fps: float = 8.0):
    rng = np.random.default_rng(width * height)
    base = (rng.random((height, width, 3)) * 255).astype(np.uint8)
    write_video(path, np.stack([np.roll(base, 3 * t, axis=1) for t in range(frames)]), fps)


def _opencv_frames(path: Path) -> list[np.ndarray]:
    """BGR frames as VBench's OpenCV reader returns them."""
    cap, frames = cv2.VideoCapture(str(path)), []
    ok, frame = cap.read()
    while ok:
        frames.append(frame)
        ok, frame = cap.read()
    return frames


def test_read_equals_opencv_resize_and_mp4v_reencode(tmp_path):
    """The frames the metrics get are those of an independent OpenCV chain: read, resize, mp4v, read back."""
    src = tmp_path / "src.mp4"
    _video(src, 96, 64)
    frames, info, details = PaperResize((16, 9), "ref").read(src, [0, 2, 5])
    writer = cv2.VideoWriter(str(tmp_path / "ref.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 8.0, (512, 288))
    for frame in _opencv_frames(src):
        writer.write(cv2.resize(frame, (512, 288), interpolation=cv2.INTER_LINEAR))
    writer.release()
    expected = [f[..., ::-1] for f in _opencv_frames(tmp_path / "ref.mp4")]
    assert frames.shape == (3, 288, 512, 3) and (info.width, info.height, info.fps) == (512, 288, 8.0)
    np.testing.assert_array_equal(frames, np.stack([expected[i] for i in (0, 2, 5)]))
    assert details == {"mode": "paper", "ratio": "16:9", "reference": "ref", "from": [96, 64], "to": [512, 288],
                       "codec": "mp4v"}


def test_mode_is_validated_and_none_keeps_native_size(tmp_path):
    with pytest.raises(ValueError, match="aspect_resize.mode"):
        paper_resize_for({"mode": "nearest"}, {})
    assert paper_resize_for({"mode": "none"}, {"a": tmp_path / "a.mp4"}) is None


def test_stage_takes_the_ratio_from_the_first_sorted_id_and_records_sizes(tmp_path):
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        cfg = compose("smoke", overrides=[f"run_dir={tmp_path / 'run'}", "device=cpu",
                                          "scorer.metrics=[dynamic_degree,aesthetic_quality]"])
    assert cfg.profile == "paper" and cfg.scorer.aspect_resize.mode == "paper"
    bench = load_benchmark("mini").filter(ids=["mini_2", "mini_10"])
    assert bench.ids == ["mini_2", "mini_10"]  # benchmark order; sorted id order puts mini_10 first
    run = RunDir(cfg.run_dir)
    _video(run.video("mini_2"), 96, 64)   # 3:2
    _video(run.video("mini_10"), 64, 36)  # 16:9 -> the run's ratio
    run_scorers(RunContext.from_config(cfg), run, bench)
    recs = {(r["sample_id"], r["metric"]): r for r in read_jsonl(run.scores_log)}
    assert len(recs) == 4 and all(r["error"] is None for r in recs.values())
    for r in recs.values():
        assert r["details"]["size"] == [512, 288]
        assert r["details"]["resize"]["ratio"] == "16:9" and r["details"]["resize"]["reference"] == "mini_10"
    assert recs[("mini_2", "dynamic_degree")]["details"]["resize"]["from"] == [96, 64]
    assert recs[("mini_2", "dynamic_degree")]["details"]["threshold"] == pytest.approx(6 * 288 / 256)
