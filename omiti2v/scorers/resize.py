"""The resize the official evaluate_i2v.py applies before VBench (evaluation/tool_based/ of the AlignVid
repository, https://github.com/LAW1223/AlignVid), as `scorer.aspect_resize.mode`.

`paper`: one aspect ratio for the whole run, the one of 1:1 5:4 4:3 3:2 8:5 5:3 16:9 nearest to the FIRST
video's width/height (earlier ratio on a tie); every video is then resized (OpenCV bilinear) to width
max(w, 512) for a landscape or square source, height max(h, 512) for a portrait one (stretched to the
landscape ratio), and re-encoded with OpenCV's mp4v writer at the source fps; the metrics read that file.
The metrics see the written file: with this OpenCV an odd target side comes back one pixel smaller
(160x128 at 5:4 -> 512x409 -> 512x408 read back); records keep both sizes.
"First video" is the first in sorted sample-id order: the official script took the unsorted filesystem
listing, which is not reproducible (the same ratio whenever all videos share one aspect).
`none`: the metrics see the native video.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..video import VideoDecodeError, VideoInfo, probe_video, read_video

MODES = ("paper", "none")
PAPER_RATIOS: tuple[tuple[int, int], ...] = ((1, 1), (5, 4), (4, 3), (3, 2), (8, 5), (5, 3), (16, 9))
PAPER_MIN_SIDE = 512


def nearest_paper_ratio(width: int, height: int) -> tuple[int, int]:
    """The official ratio closest to width/height (linear distance); min() keeps the earlier one on a tie."""
    aspect = width / height
    return min(PAPER_RATIOS, key=lambda r: abs(aspect - r[0] / r[1]))


def paper_target_size(width: int, height: int, ratio: tuple[int, int]) -> tuple[int, int]:
    """(w, h) evaluate_i2v.py resizes a width x height video to under `ratio`, e.g. 832x480 at 16:9 -> 832x468."""
    rw, rh = ratio
    if width >= height:
        new_width = max(width, PAPER_MIN_SIDE)
        return new_width, int(new_width * rh / rw)
    new_height = max(height, PAPER_MIN_SIDE)
    return int(new_height * rw / rh), new_height


def reencode_mp4v(frames: np.ndarray, size: tuple[int, int], fps: float, path: Path) -> Path:
    """uint8 RGB (T, H, W, 3) resized with cv2.resize's default bilinear to `size` (w, h), written as mp4v."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), size)
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot open an mp4v writer for {path}")
    try:
        for frame in frames:
            writer.write(cv2.resize(np.ascontiguousarray(frame[..., ::-1]), size))
    finally:
        writer.release()
    return path


@dataclass(frozen=True)
class PaperResize:
    """The run's shared ratio and the video that fixed it."""

    ratio: tuple[int, int]
    reference: str

    def read(self, path: Path, indices: Sequence[int] | None) -> tuple[np.ndarray, VideoInfo, dict]:
        """The frames `indices` (all when None) of `path` after the official resize + mp4v re-encode.

        Every frame is re-encoded even when few are needed: mp4v predicts frames from earlier ones."""
        frames, info = read_video(path)
        size = paper_target_size(info.width, info.height, self.ratio)
        with tempfile.TemporaryDirectory(prefix="omiti2v-resize-") as tmp:
            resized = reencode_mp4v(frames, size, info.fps, Path(tmp) / "resized.mp4")
            out, out_info = read_video(resized, indices)
        out_info = VideoInfo(info.fps, out_info.num_frames, out_info.width, out_info.height)
        details = {"mode": "paper", "ratio": f"{self.ratio[0]}:{self.ratio[1]}", "reference": self.reference,
                   "from": [info.width, info.height], "to": list(size), "codec": "mp4v"}
        return out, out_info, details


def paper_resize_for(aspect: Mapping | None, videos: Mapping[str, Path]) -> PaperResize | None:
    """The resize `scorer.aspect_resize` asks for over a run's videos (sample id -> path), or None.

    The ratio comes from the first existing video in sorted id order, so it does not depend on which
    videos a resumed run still has to score."""
    mode = str((aspect or {}).get("mode", "none"))
    if mode not in MODES:
        raise ValueError(f"scorer.aspect_resize.mode: {mode!r} is not one of {', '.join(MODES)}")
    if mode == "none":
        return None
    for sample_id in sorted(videos):
        try:
            info = probe_video(videos[sample_id])
        except VideoDecodeError:  # missing or broken: the listing would not have returned it as a video
            continue
        return PaperResize(nearest_paper_ratio(info.width, info.height), sample_id)
    return None
