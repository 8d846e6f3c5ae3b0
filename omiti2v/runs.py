"""Run directories, atomic writes, resumable JSONL logs and provenance (versions, hashes, seeds).

Layout of one run (`results/runs/<data>/<model>/<asm>-<schedule>/`):
    config.yaml          resolved Hydra config of the latest stage invocation
    videos/{id}.mp4      generated videos, with videos/{id}.json sidecars
    generation.jsonl     one record per sample attempt (ok or failed)
    judge.jsonl          one record per question
    scores.jsonl         one record per video and metric
    summary.json         the run's numbers, schema in omiti2v/schemas/summary.schema.json
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import omiti2v
from omiti2v.paths import confined


class RunDir:
    """Paths of one run's files; creating it makes the folder."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)

    videos = property(lambda self: self.path / "videos")
    generation_log = property(lambda self: self.path / "generation.jsonl")
    judge_log = property(lambda self: self.path / "judge.jsonl")
    scores_log = property(lambda self: self.path / "scores.jsonl")
    summary = property(lambda self: self.path / "summary.json")
    config = property(lambda self: self.path / "config.yaml")

    def video(self, sample_id: str) -> Path:
        return confined(self.videos, f"{sample_id}.mp4")

    def sidecar(self, sample_id: str) -> Path:
        return confined(self.videos, f"{sample_id}.json")


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write through a temp file in the same folder and rename, so readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str, allow_nan=False) + "\n")


def append_jsonl(path: str | os.PathLike, records: Iterable[dict]) -> None:
    """Append records, one line each, flushed and synced: a kill loses at most the line being written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        for rec in records:
            f.write(json.dumps(rec, ensure_ascii=False, default=str, allow_nan=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_jsonl(path: str | os.PathLike) -> Iterator[dict]:
    """Records of a JSONL log; a truncated last line (a killed writer) is skipped, a bad middle line is an error."""
    path = Path(path)
    if not path.exists():
        return
    lines = path.read_text(encoding="utf-8").splitlines()
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except json.JSONDecodeError as exc:
            if n == len(lines):
                return
            raise ValueError(f"{path}: line {n} is not valid JSON: {exc}") from exc


def sample_seed(base_seed: int, sample_id: str) -> int:
    """Per-sample seed: stable across machines, shards and orderings (not Python's salted hash)."""
    digest = hashlib.sha256(f"{base_seed}:{sample_id}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def to_plain(node: Any) -> Any:
    """A Hydra node as resolved plain containers (plain values deep-copied): safe to merge, hash and dump."""
    from omegaconf import OmegaConf

    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else copy.deepcopy(node)


def config_hash(cfg: Any) -> str:
    """sha256 of a JSON-serialisable config, keys sorted."""
    return "sha256:" + hashlib.sha256(json.dumps(cfg, sort_keys=True, default=str).encode()).hexdigest()


def git_commit() -> str | None:
    """Commit of the harness checkout (with '+dirty' when it has local changes), or None outside git."""
    repo = Path(omiti2v.__file__).resolve().parents[1]
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo, capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return sha + ("+dirty" if dirty else "")


def versions() -> dict[str, str | None]:
    """Versions of the harness and the libraries whose behaviour changes its numbers."""
    out: dict[str, str | None] = {"omiti2v": omiti2v.__version__, "git_commit": git_commit()}
    for name in ("torch", "torchvision", "diffusers", "transformers", "qwen-vl-utils", "pyiqa", "decord", "av"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out
