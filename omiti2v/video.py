"""Reading and writing MP4 videos: decord first (fast random access), PyAV as the fallback; H.264 writes.

Every read first checks the container's header (frames, size, duration; nothing decoded) against a
`VideoBudget`, so a tiny file declaring thousands of huge frames is refused before it can take the memory.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from .safeload import env_limit


class VideoDecodeError(RuntimeError):
    """A video file is missing, empty or cannot be decoded."""


class VideoTooLargeError(VideoDecodeError):
    """A video's header declares more frames, pixels or seconds than the budget allows."""


@dataclass(frozen=True)
class VideoInfo:
    fps: float
    num_frames: int
    width: int
    height: int


@dataclass(frozen=True)
class VideoBudget:
    """Bounds on what a read may decode. The defaults fit every benchmark model (the largest, HunyuanVideo-I2V:
    129 frames at 1280x720, 340 MiB decoded) with room to spare; raise them with the environment variables.
    Each bound holds alone and so does their product: the frames a read asks for x width x height x 3 bytes must
    fit `max_decoded_bytes`, so a small file declaring many large frames is refused before it is decoded."""

    max_frames: int = env_limit("OMITI2V_MAX_VIDEO_FRAMES", 2000)
    max_long_side: int = env_limit("OMITI2V_MAX_VIDEO_LONG_SIDE", 1920)
    max_short_side: int = env_limit("OMITI2V_MAX_VIDEO_SHORT_SIDE", 1088)
    max_seconds: int = env_limit("OMITI2V_MAX_VIDEO_SECONDS", 600)
    max_decoded_bytes: int = env_limit("OMITI2V_MAX_DECODED_MB", 1024) << 20  # RGB frames of one read

    def check(self, path: Path, info: VideoInfo, duration: float | None = None) -> None:
        """Raise VideoTooLargeError naming the file and the first bound it breaks."""
        long_side, short_side = max(info.width, info.height), min(info.width, info.height)
        problems = [
            (info.num_frames > self.max_frames, f"{info.num_frames} frames (at most {self.max_frames}, "
                                                "OMITI2V_MAX_VIDEO_FRAMES)"),
            (long_side > self.max_long_side or short_side > self.max_short_side,
             f"{info.width}x{info.height} px (at most {self.max_long_side}x{self.max_short_side}, "
             "OMITI2V_MAX_VIDEO_LONG_SIDE / OMITI2V_MAX_VIDEO_SHORT_SIDE)"),
            (duration is not None and duration > self.max_seconds,
             f"{duration or 0:.0f} s long (at most {self.max_seconds}, OMITI2V_MAX_VIDEO_SECONDS)"),
        ]
        for broken, problem in problems:
            if broken:
                raise VideoTooLargeError(f"{path.name}: {problem}")

    def check_decode(self, path: Path, info: VideoInfo, count: int) -> None:
        decoded = count * info.width * info.height * 3
        if decoded > self.max_decoded_bytes:
            raise VideoTooLargeError(f"{path.name}: decoding {count} frames of {info.width}x{info.height} takes "
                                     f"{decoded / 2**20:.0f} MiB (at most {self.max_decoded_bytes >> 20}, OMITI2V_MAX_DECODED_MB)")


def probe_header(path: str | os.PathLike, budget: VideoBudget | None = None) -> VideoInfo:
    """fps, frame count and size from the container alone (packets are counted, never decoded), checked
    against `budget`."""
    import av

    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        raise VideoDecodeError(f"{path}: missing or empty video file")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoDecodeError(f"{path.name}: no video stream")
            stream = container.streams.video[0]
            fps = float(stream.average_rate or stream.guessed_rate or 0)
            width, height = stream.codec_context.width, stream.codec_context.height
            duration = (float(stream.duration * stream.time_base) if stream.duration and stream.time_base
                        else container.duration / 1e6 if container.duration else None)
            frames = stream.frames or sum(1 for packet in container.demux(stream) if packet.size)
    except (av.error.FFmpegError, OSError, ValueError, IndexError, ZeroDivisionError) as exc:
        raise VideoDecodeError(f"{path.name}: cannot read the video container: {exc}") from None
    if width <= 0 or height <= 0 or frames <= 0:
        raise VideoDecodeError(f"{path.name}: the container declares no frames or no size")
    info = VideoInfo(fps, int(frames), int(width), int(height))
    (budget or VideoBudget()).check(path, info, duration)
    return info


def _decord_reader(path: Path):
    try:
        import decord
    except ImportError:
        return None
    try:
        return decord.VideoReader(str(path), num_threads=1)
    except Exception:  # decord raises its own DECORDError for broken files; PyAV gets a second chance
        return None


def probe_video(path: str | os.PathLike, budget: VideoBudget | None = None) -> VideoInfo:
    """fps, frame count and size as the decoder sees them, after the header passed the budget."""
    path = Path(path)
    budget = budget or VideoBudget()
    header = probe_header(path, budget)
    vr = _decord_reader(path)
    if vr is not None and len(vr) > 0:
        h, w = vr[0].shape[:2]
        return VideoInfo(float(vr.get_avg_fps()), len(vr), w, h)
    return _read_pyav(path, [0], budget, header)[1]


def read_video(path: str | os.PathLike, indices: Sequence[int] | None = None,
               budget: VideoBudget | None = None) -> tuple[np.ndarray, VideoInfo]:
    """Decode the frames at `indices` (all when None) as uint8 RGB (T, H, W, 3), with the stream's info.
    The header is checked against `budget` first, and so is the memory the decoded frames will take."""
    path = Path(path)
    budget = budget or VideoBudget()
    header = probe_header(path, budget)
    budget.check_decode(path, header, header.num_frames if indices is None else len(indices))
    vr = _decord_reader(path)
    if vr is not None and len(vr) > 0:
        n = len(vr)
        idx = list(range(n)) if indices is None else list(indices)
        if any(i < 0 or i >= n for i in idx):
            raise VideoDecodeError(f"{path}: frame index out of range 0..{n - 1}")
        try:
            frames = vr.get_batch(idx).asnumpy()
        except Exception:  # decord fails on some small/odd strides (DECORDError); PyAV decodes those
            return _read_pyav(path, indices, budget, header)
        return frames, VideoInfo(float(vr.get_avg_fps()), n, frames.shape[2], frames.shape[1])
    return _read_pyav(path, indices, budget, header)


def _read_pyav(path: Path, indices: Sequence[int] | None, budget: VideoBudget,
               header: VideoInfo) -> tuple[np.ndarray, VideoInfo]:
    """Stream-decode, keeping only the wanted frames; a stream holding more frames than the budget (a header
    that lies) or frames larger than the header said is cut off."""
    import av

    wanted = None if indices is None else set(indices)
    kept: dict[int, np.ndarray] = {}
    count = 0
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            fps = float(stream.average_rate or stream.guessed_rate or 0)
            for frame in container.decode(stream):
                if count >= budget.max_frames or (frame.width, frame.height) != (header.width, header.height):
                    raise VideoTooLargeError(f"{path.name}: the stream holds more or other frames than its header "
                                             f"declares ({header.num_frames} of {header.width}x{header.height})")
                if wanted is None or count in wanted:
                    kept[count] = frame.to_ndarray(format="rgb24")
                count += 1
    except (av.error.FFmpegError, IndexError, ValueError) as exc:
        raise VideoDecodeError(f"{path}: cannot decode video: {exc}") from exc
    if not count:
        raise VideoDecodeError(f"{path}: no video frames")
    idx = list(range(count)) if indices is None else list(indices)
    if any(i < 0 or i >= count for i in idx):
        raise VideoDecodeError(f"{path}: frame index out of range 0..{count - 1}")
    arr = np.stack([kept[i] for i in idx])
    return arr, VideoInfo(fps, count, arr.shape[2], arr.shape[1])


def write_video(path: str | os.PathLike, frames: np.ndarray, fps: float, crf: int = 18) -> Path:
    """Write uint8 RGB frames (T, H, W, 3) as H.264/yuv420p MP4, atomically (runs.atomic_output: temp file +
    rename, mode from the umask; a full disk raises WriteFaultError and leaves no partial file).

    yuv420p needs even sides: an odd last row or column is dropped.
    """
    from .runs import atomic_output

    path = Path(path)
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise ValueError(f"write_video({path}): need uint8 frames of shape (T, H, W, 3), got {frames.dtype} {frames.shape}")
    h, w = frames.shape[1] - frames.shape[1] % 2, frames.shape[2] - frames.shape[2] % 2
    with atomic_output(path, suffix=".mp4") as tmp:
        _encode(tmp, frames[:, :h, :w], fps, crf)
    return path


def _encode(path: Path, frames: np.ndarray, fps: float, crf: int) -> None:
    import av

    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.options = {"crf": str(crf), "preset": "medium"}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")))
        container.mux(stream.encode())
