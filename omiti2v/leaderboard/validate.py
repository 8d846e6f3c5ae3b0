"""Checks on a staged submission: submission.yaml, exactly the benchmark's ids, real decodable MP4s within
frame, fps and resolution bounds read from the container before any decoding. Each failure is one line naming
the file and the rule; all of them are reported at once."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from ..safeload import ParseError, read_yaml
from ..video import VideoBudget, VideoDecodeError, probe_header, read_video
from .archive import SubmissionRejected

METADATA_FILE = "submission.yaml"
METADATA_MAX_BYTES = 64 * 1024
REQUIRED_METADATA = {"model": str, "method": str, "parameters": dict, "contact": str}
OPTIONAL_METADATA = {"name": str, "description": str, "url": str}


@dataclass(frozen=True)
class VideoLimits:
    min_frames: int = 16
    max_frames: int = 2000
    min_fps: float = 4.0
    max_fps: float = 60.0
    min_side: int = 128
    max_side: int = 1920
    max_short_side: int = 1088  # with max_side: 1920x1088 landscape or 1088x1920 portrait
    max_decoded_mb: int = VideoBudget().max_decoded_bytes >> 20  # frames x width x height x 3: the scorers read all

    def budget(self) -> VideoBudget:
        return VideoBudget(max_frames=self.max_frames, max_long_side=self.max_side, max_short_side=self.max_short_side,
                           max_decoded_bytes=self.max_decoded_mb << 20)


# The container's own numbers are read whatever they say; VideoLimits then names the first one out of bounds.
UNBOUNDED = VideoBudget(max_frames=1 << 30, max_long_side=1 << 30, max_short_side=1 << 30, max_decoded_bytes=1 << 62)


@dataclass(frozen=True)
class StagedSubmission:
    metadata: dict
    videos: dict[str, Path]            # sample id -> staged mp4
    video_info: dict[str, dict]         # sample id -> {"sha256", "fps", "num_frames", "width", "height"}
    metadata_sha256: str


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def metadata_problems(path: Path) -> tuple[dict | None, list[str]]:
    """submission.yaml parsed with bounds (no aliases, depth, size, duplicate keys) and checked against the
    entry schema's `submission` part; (metadata or None, every problem)."""
    try:
        meta = read_yaml(path, max_bytes=METADATA_MAX_BYTES)
    except ParseError as exc:
        return None, [f"{METADATA_FILE}: {exc.problem}"]
    if not isinstance(meta, dict):
        return None, [f"{METADATA_FILE}: must be a mapping with keys {sorted(REQUIRED_METADATA)}"]
    problems = [f"{METADATA_FILE}: missing field '{key}'" for key in REQUIRED_METADATA if key not in meta]
    for key, kind in {**REQUIRED_METADATA, **OPTIONAL_METADATA}.items():
        if meta.get(key) is not None and not isinstance(meta[key], kind):
            problems.append(f"{METADATA_FILE}: field '{key}' must be a {kind.__name__}")
    unknown = sorted(str(k)[:40] for k in set(meta) - set(REQUIRED_METADATA) - set(OPTIONAL_METADATA))
    if unknown:
        problems.append(f"{METADATA_FILE}: unknown fields {unknown}")
    if not problems:
        from .board import submission_problems

        problems = submission_problems(meta, METADATA_FILE)
    return (None if problems else meta), problems


def check_video(sample_id: str, path: Path, limits: VideoLimits) -> dict:
    with open(path, "rb") as f:
        head = f.read(12)
    if len(head) < 12 or head[4:8] != b"ftyp":
        raise SubmissionRejected(f"{path.name}: not an MP4 video (no 'ftyp' box at the start)")
    budget = limits.budget()
    try:
        info = probe_header(path, UNBOUNDED)
    except VideoDecodeError as exc:
        raise SubmissionRejected(f"{path.name}: not decodable ({_reason(exc, path)})") from None
    if not limits.min_frames <= info.num_frames <= limits.max_frames:
        raise SubmissionRejected(f"{path.name}: {info.num_frames} frames, expected {limits.min_frames}..{limits.max_frames}")
    if not limits.min_fps <= info.fps <= limits.max_fps:
        raise SubmissionRejected(f"{path.name}: {info.fps:g} fps, expected {limits.min_fps:g}..{limits.max_fps:g}")
    for side, value in (("width", info.width), ("height", info.height)):
        if not limits.min_side <= value <= limits.max_side:
            raise SubmissionRejected(f"{path.name}: {side} {value} px, expected {limits.min_side}..{limits.max_side}")
    if min(info.width, info.height) > limits.max_short_side:
        raise SubmissionRejected(f"{path.name}: {info.width}x{info.height} px, the shorter side may be at most "
                                 f"{limits.max_short_side}")
    decoded_mb = info.num_frames * info.width * info.height * 3 / 2**20
    if decoded_mb > limits.max_decoded_mb:
        raise SubmissionRejected(f"{path.name}: {info.num_frames} frames of {info.width}x{info.height} decode to "
                                 f"{decoded_mb:.0f} MiB, more than {limits.max_decoded_mb} (--max-decoded-mb)")
    try:
        frames, decoded = read_video(path, [0, info.num_frames - 1], budget)  # first and last frame must decode
    except (VideoDecodeError, ValueError, RuntimeError) as exc:
        raise SubmissionRejected(f"{path.name}: not decodable ({_reason(exc, path)})") from None
    return {"sha256": sha256_file(path), "fps": decoded.fps, "num_frames": decoded.num_frames,
            "width": decoded.width, "height": decoded.height}


def _reason(exc: Exception, path: Path) -> str:
    """The first line of a decoder error without the (private, staging) folder of the file."""
    return str(exc).splitlines()[0].replace(str(path), path.name) if str(exc) else type(exc).__name__


def validate_staged(files: list[Path], benchmark_ids: list[str], limits: VideoLimits) -> StagedSubmission:
    """The checked submission, or SubmissionRejected listing every problem found."""
    by_name = {p.name: p for p in files}
    problems: list[str] = []
    metadata = None
    if METADATA_FILE not in by_name:
        problems.append(f"{METADATA_FILE}: missing (model, method, parameters, contact)")
        meta_path = None
    else:
        meta_path = by_name.pop(METADATA_FILE)
        metadata, problems = metadata_problems(meta_path)
    expected = {f"{sid}.mp4".lower(): f"{sid}.mp4" for sid in benchmark_ids}
    misspelt = sorted(n for n in by_name if n not in expected.values() and n.lower() in expected)
    for name in misspelt:
        problems.append(f"{name}: names are '{{id}}.mp4' as the benchmark spells them (did you mean "
                        f"'{expected[name.lower()]}'?)")
    non_video = sorted(n for n in by_name if not n.endswith(".mp4") and n not in misspelt)
    if non_video:
        problems.append(f"{non_video[0]}: not a video ({len(non_video)} non-.mp4 file(s); only {{id}}.mp4 and "
                        f"{METADATA_FILE} are allowed)")
    present = {n.removesuffix(".mp4") for n in by_name if n.endswith(".mp4") and n not in misspelt}
    extra, missing = sorted(present - set(benchmark_ids)), sorted(set(benchmark_ids) - present)
    if extra or missing:
        parts = ([f"unexpected ids {extra[:5]}{'...' if len(extra) > 5 else ''}"] if extra else []) + (
            [f"missing ids {missing[:5]}{'...' if len(missing) > 5 else ''}"] if missing else [])
        problems.append(f"submission: {'; '.join(parts)} ({len(benchmark_ids)} expected)")
    videos = {sid: by_name[f"{sid}.mp4"] for sid in benchmark_ids if f"{sid}.mp4" in by_name}
    info = {}
    for sid, path in tqdm(videos.items(), desc="checking videos", unit="video", disable=len(videos) < 50):
        try:
            info[sid] = check_video(sid, path, limits)
        except SubmissionRejected as exc:
            problems += exc.problems
    if problems:
        raise SubmissionRejected(*problems)
    return StagedSubmission(metadata, videos, info, sha256_file(meta_path))
