"""Checks on a staged submission: submission.yaml, exactly the benchmark's ids, real decodable MP4s within
frame, fps and resolution bounds. Each failure is one line naming the file and the rule."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import yaml
from tqdm import tqdm

from ..video import VideoDecodeError, probe_video, read_video
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
    max_side: int = 2048


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


def read_metadata(path: Path) -> dict:
    if path.stat().st_size > METADATA_MAX_BYTES:
        raise SubmissionRejected(f"{METADATA_FILE}: larger than {METADATA_MAX_BYTES} bytes")
    try:
        meta = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise SubmissionRejected(f"{METADATA_FILE}: not valid YAML ({str(exc).splitlines()[0]})") from exc
    if not isinstance(meta, dict):
        raise SubmissionRejected(f"{METADATA_FILE}: must be a mapping with keys {sorted(REQUIRED_METADATA)}")
    for key, kind in REQUIRED_METADATA.items():
        if key not in meta:
            raise SubmissionRejected(f"{METADATA_FILE}: missing field '{key}'")
        if not isinstance(meta[key], kind) or (kind is str and not meta[key].strip()):
            raise SubmissionRejected(f"{METADATA_FILE}: field '{key}' must be a non-empty {kind.__name__}")
    for key, kind in OPTIONAL_METADATA.items():
        if meta.get(key) is not None and not isinstance(meta[key], kind):
            raise SubmissionRejected(f"{METADATA_FILE}: field '{key}' must be a {kind.__name__}")
    unknown = sorted(set(meta) - set(REQUIRED_METADATA) - set(OPTIONAL_METADATA))
    if unknown:
        raise SubmissionRejected(f"{METADATA_FILE}: unknown fields {unknown}")
    return meta


def check_video(sample_id: str, path: Path, limits: VideoLimits) -> dict:
    with open(path, "rb") as f:
        head = f.read(12)
    if len(head) < 12 or head[4:8] != b"ftyp":
        raise SubmissionRejected(f"{path.name}: not an MP4 video (no 'ftyp' box at the start)")
    try:
        info = probe_video(path)
        read_video(path, [0, info.num_frames - 1])  # first and last frame must decode
    except (VideoDecodeError, ValueError, RuntimeError) as exc:
        raise SubmissionRejected(f"{path.name}: not decodable ({str(exc).splitlines()[0]})") from exc
    if not limits.min_frames <= info.num_frames <= limits.max_frames:
        raise SubmissionRejected(f"{path.name}: {info.num_frames} frames, expected {limits.min_frames}..{limits.max_frames}")
    if not limits.min_fps <= info.fps <= limits.max_fps:
        raise SubmissionRejected(f"{path.name}: {info.fps:g} fps, expected {limits.min_fps:g}..{limits.max_fps:g}")
    for side, value in (("width", info.width), ("height", info.height)):
        if not limits.min_side <= value <= limits.max_side:
            raise SubmissionRejected(f"{path.name}: {side} {value} px, expected {limits.min_side}..{limits.max_side}")
    return {"sha256": sha256_file(path), "fps": info.fps, "num_frames": info.num_frames,
            "width": info.width, "height": info.height}


def validate_staged(files: list[Path], benchmark_ids: list[str], limits: VideoLimits) -> StagedSubmission:
    by_name = {p.name: p for p in files}
    if METADATA_FILE not in by_name:
        raise SubmissionRejected(f"{METADATA_FILE}: missing (model, method, parameters, contact)")
    meta_path = by_name.pop(METADATA_FILE)
    metadata = read_metadata(meta_path)
    non_video = sorted(n for n in by_name if not n.endswith(".mp4"))
    if non_video:
        raise SubmissionRejected(f"{non_video[0]}: not a video ({len(non_video)} non-.mp4 file(s); only {{id}}.mp4 and {METADATA_FILE} are allowed)")
    present = {n.removesuffix(".mp4") for n in by_name}
    extra, missing = sorted(present - set(benchmark_ids)), sorted(set(benchmark_ids) - present)
    if extra or missing:
        parts = ([f"unexpected ids {extra[:5]}{'...' if len(extra) > 5 else ''}"] if extra else []) + (
            [f"missing ids {missing[:5]}{'...' if len(missing) > 5 else ''}"] if missing else [])
        raise SubmissionRejected(f"submission: {'; '.join(parts)} ({len(benchmark_ids)} expected)")
    videos = {sid: by_name[f"{sid}.mp4"] for sid in benchmark_ids}
    info = {sid: check_video(sid, path, limits)
            for sid, path in tqdm(videos.items(), desc="checking videos", unit="video", disable=len(videos) < 50)}
    return StagedSubmission(metadata, videos, info, sha256_file(meta_path))
