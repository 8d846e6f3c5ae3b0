"""Reading and writing MP4 videos: decord first (fast random access), PyAV as the fallback; H.264 writes."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np


class VideoDecodeError(RuntimeError):
    """A video file is missing, empty or cannot be decoded."""


@dataclass(frozen=True)
class VideoInfo:
    fps: float
    num_frames: int
    width: int
    height: int


def _decord_reader(path: Path):
    try:
        import decord
    except ImportError:
        return None
    try:
        return decord.VideoReader(str(path), num_threads=1)
    except Exception:  # decord raises its own DECORDError for broken files; PyAV gets a second chance
        return None


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """fps, frame count and size without decoding pixels where the container allows it."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        raise VideoDecodeError(f"{path}: missing or empty video file")
    vr = _decord_reader(path)
    if vr is not None and len(vr) > 0:
        h, w = vr[0].shape[:2]
        return VideoInfo(float(vr.get_avg_fps()), len(vr), w, h)
    frames, info = _read_pyav(path, None)
    return info


def read_video(path: str | os.PathLike, indices: Sequence[int] | None = None) -> tuple[np.ndarray, VideoInfo]:
    """Decode the frames at `indices` (all when None) as uint8 RGB (T, H, W, 3), with the stream's info."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        raise VideoDecodeError(f"{path}: missing or empty video file")
    vr = _decord_reader(path)
    if vr is not None and len(vr) > 0:
        n = len(vr)
        idx = list(range(n)) if indices is None else list(indices)
        if any(i < 0 or i >= n for i in idx):
            raise VideoDecodeError(f"{path}: frame index out of range 0..{n - 1}")
        try:
            frames = vr.get_batch(idx).asnumpy()
        except Exception:  # decord fails on some small/odd strides (DECORDError); PyAV decodes those
            return _read_pyav(path, indices)
        return frames, VideoInfo(float(vr.get_avg_fps()), n, frames.shape[2], frames.shape[1])
    return _read_pyav(path, indices)


def _read_pyav(path: Path, indices: Sequence[int] | None) -> tuple[np.ndarray, VideoInfo]:
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            fps = float(stream.average_rate or stream.guessed_rate or 0)
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    except (av.error.FFmpegError, IndexError, ValueError) as exc:
        raise VideoDecodeError(f"{path}: cannot decode video: {exc}") from exc
    if not frames:
        raise VideoDecodeError(f"{path}: no video frames")
    arr = np.stack(frames)
    info = VideoInfo(fps, len(arr), arr.shape[2], arr.shape[1])
    if indices is not None:
        idx = list(indices)
        if any(i < 0 or i >= len(arr) for i in idx):
            raise VideoDecodeError(f"{path}: frame index out of range 0..{len(arr) - 1}")
        arr = arr[idx]
    return arr, info


def write_video(path: str | os.PathLike, frames: np.ndarray, fps: float, crf: int = 18) -> Path:
    """Write uint8 RGB frames (T, H, W, 3) as H.264/yuv420p MP4, atomically (temp file + rename).

    yuv420p needs even sides: an odd last row or column is dropped.
    """
    import av

    path = Path(path)
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise ValueError(f"write_video({path}): need uint8 frames of shape (T, H, W, 3), got {frames.dtype} {frames.shape}")
    h, w = frames.shape[1] - frames.shape[1] % 2, frames.shape[2] - frames.shape[2] % 2
    frames = frames[:, :h, :w]
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".mp4", prefix=f".{path.stem}.", dir=path.parent)
    os.close(fd)
    try:
        with av.open(tmp, mode="w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            stream.options = {"crf": str(crf), "preset": "medium"}
            for frame in frames:
                container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")))
            container.mux(stream.encode())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
