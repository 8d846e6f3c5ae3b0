"""Video I/O: H.264 round trip, fps and frame counts, odd sizes, broken files, the authors' real videos."""

import numpy as np
import pytest

from omiti2v.video import VideoDecodeError, probe_video, read_video, write_video


def gradient_frames(t=12, h=48, w=64):
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([np.stack([(x * 4 + i * 8) % 256, (y * 5) % 256, np.full_like(x, 40 + 10 * i)], -1) for i in range(t)]).astype(np.uint8)


def test_round_trip_keeps_count_fps_size_and_content(tmp_path):
    frames = gradient_frames()
    path = write_video(tmp_path / "v.mp4", frames, fps=24)
    info = probe_video(path)
    assert (info.num_frames, info.fps, info.width, info.height) == (12, 24.0, 64, 48)
    decoded, _ = read_video(path)
    assert decoded.shape == frames.shape
    assert np.abs(decoded.astype(int) - frames).mean() < 4  # lossy but close at crf 18
    sub, _ = read_video(path, [0, 11])
    np.testing.assert_array_equal(sub, decoded[[0, 11]])
    assert [p.name for p in tmp_path.iterdir()] == ["v.mp4"]  # no temp file left


def test_odd_sizes_are_cropped_to_even(tmp_path):
    info = probe_video(write_video(tmp_path / "odd.mp4", gradient_frames(3, 33, 45), fps=8))
    assert (info.width, info.height) == (44, 32)


def test_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match="uint8 frames"):
        write_video(tmp_path / "f.mp4", np.zeros((2, 8, 8, 3), np.float32), 8)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 50)
    with pytest.raises(VideoDecodeError, match="broken.mp4"):
        read_video(broken)
    with pytest.raises(VideoDecodeError, match="missing or empty"):
        probe_video(tmp_path / "none.mp4")
    path = write_video(tmp_path / "ok.mp4", gradient_frames(4), 8)
    with pytest.raises(VideoDecodeError, match="out of range"):
        read_video(path, [4])


@pytest.mark.parametrize("name,fps,frames,size", [
    ("wan21_original_car", 16, 81, (768, 512)),
    ("framepack_f1_alignvid_kite", 24, 181, (768, 512)),
    ("framepack_original_flowers", 30, 181, (832, 480)),
])
def test_authors_videos_probe_with_true_fps_and_counts(shared_videos, name, fps, frames, size):
    info = probe_video(shared_videos / f"{name}.mp4")
    assert (info.fps, info.num_frames, (info.width, info.height)) == (fps, frames, size)


def test_narrow_video_that_decord_cannot_copy_falls_back_to_pyav(tmp_path):
    frames = gradient_frames(5, 32, 48)  # decord's get_batch rejects this stride
    decoded, info = read_video(write_video(tmp_path / "narrow.mp4", frames, fps=8))
    assert decoded.shape == (5, 32, 48, 3) and info.num_frames == 5
    assert np.abs(decoded.astype(int) - frames).mean() < 4
