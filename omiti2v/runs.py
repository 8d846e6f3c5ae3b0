"""Run directories, atomic writes, resumable JSONL logs and provenance (versions, hashes, seeds).

Layout of one run (`results/runs/<data>/<model>/<asm>-<schedule>/`):
    config.yaml          resolved Hydra config of the latest stage invocation
    videos/{id}.mp4      generated videos, with videos/{id}.json sidecars
    generation.jsonl     one record per sample attempt (ok or failed)
    judge.jsonl          one record per question
    scores.jsonl         one record per video and metric
    summary.json         the run's numbers, schema in omiti2v/schemas/summary.schema.json
    samples.csv          one row per sample with every per-sample metric (omiti2v.summary.sample_table)
    .claims/<stage>/     who works on which sample now (omiti2v.claims), empty when no launch runs
"""

from __future__ import annotations

import copy
import errno
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from importlib import metadata
from pathlib import Path
from typing import Any

import omiti2v
from omiti2v.paths import UnsafePathError, config_path_problems, confined, source_checkout, stem_problem

from .errors import SetupError

# Appends take milliseconds: a lock unrefreshed this long is a dead writer's; wait at most this long for one.
APPEND_LEASE_S = 30.0
APPEND_WAIT_S = 120.0
# A holder fills the lease marker it creates within milliseconds: one left empty this long belongs to a killed one.
ABANDONED_MARKER_S = 10.0


class RunDir:
    """Paths of one run's files; creating it makes the folder."""

    def __init__(self, path: str | os.PathLike):
        self.path = make_folder(path)

    videos = property(lambda self: self.path / "videos")
    generation_log = property(lambda self: self.path / "generation.jsonl")
    judge_log = property(lambda self: self.path / "judge.jsonl")
    scores_log = property(lambda self: self.path / "scores.jsonl")
    summary = property(lambda self: self.path / "summary.json")
    samples = property(lambda self: self.path / "samples.csv")
    config = property(lambda self: self.path / "config.yaml")

    def video(self, sample_id: str) -> Path:
        return confined(self.videos, f"{sample_id}.mp4")

    def sidecar(self, sample_id: str) -> Path:
        return confined(self.videos, f"{sample_id}.json")


class JudgeRunDir(RunDir):
    """A run seen through one extra judge: videos are the run's, judge.jsonl is judges/<name>/judge.jsonl."""

    def __init__(self, run: RunDir, judge_name: str):
        if problem := stem_problem(judge_name):
            raise UnsafePathError(f"judge name {problem}; it names the folder judges/<name>/")
        super().__init__(run.path)
        self.judge_name = judge_name

    judge_log = property(lambda self: self.path / "judges" / self.judge_name / "judge.jsonl")


# Errors that mean the storage refused the bytes (full disk, quota, I/O error, read-only or forbidden folder, a
# folder where the file goes): the run cannot go on. Creating a file's folder or temp file fails on any OSError
# (a path under /proc gives ENOENT) with the same error.
SPACE_FAULTS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
WRITE_FAULTS = SPACE_FAULTS | {errno.EIO, errno.EROFS, errno.EACCES, errno.EPERM, errno.EISDIR, errno.ENOTDIR}


class WriteFaultError(SetupError):
    """The filesystem refused a write; the message names the file, what went wrong and what to do."""

    @classmethod
    def from_os_error(cls, path: Path, exc: OSError) -> WriteFaultError:
        reason = exc.strerror or str(exc)
        if exc.errno in SPACE_FAULTS or exc.errno == errno.EIO:
            return cls(f"cannot write {path}: {reason} ({free_space_text(path)} on that filesystem). Nothing "
                       "partial was kept; free space and rerun the same command: finished work is kept and the "
                       "rest is redone.")
        advice = {errno.EISDIR: "a folder stands where the file goes: move it away",
                  errno.ENOTDIR: "a file stands where a folder of the path goes: move it away",
                  errno.ENOENT: "its folder cannot be created there: choose another place"}.get(
            exc.errno, "the folder is read-only or not yours: choose a writable place (results_root / "
                       "OMITI2V_RESULTS, --leaderboard, --out)")
        return cls(f"cannot write {path}: {reason}; {advice}. Nothing partial was kept.")


def free_space_text(path: Path) -> str:
    """'12.34 GiB free' on the filesystem of `path` (or of its nearest existing folder)."""
    folder = next((p for p in (path, *path.parents) if p.exists()), Path("/"))
    try:
        return f"{shutil.disk_usage(folder).free / 2**30:.2f} GiB free"
    except OSError:
        return "free space unknown"


def require_free_space(folder: Path, needed: int, what: str) -> None:
    """WriteFaultError before writing `needed` bytes under `folder` when its filesystem has less free."""
    probe = next((p for p in (folder, *folder.parents) if p.exists()), Path("/"))
    try:
        free = shutil.disk_usage(probe).free
    except OSError:
        return
    if needed > free:
        raise WriteFaultError(f"{what} needs {needed / 2**30:.2f} GiB under {folder}, and only {free / 2**30:.2f} "
                              "GiB are free there; free space (or choose another place) and rerun")


@contextmanager
def write_faults_named(path: Path) -> Iterator[None]:
    """Turn a storage OSError inside the block into WriteFaultError naming `path` (others pass through)."""
    try:
        yield
    except WriteFaultError:
        raise
    except OSError as exc:
        if exc.errno not in WRITE_FAULTS:
            raise
        raise WriteFaultError.from_os_error(path, exc) from exc


def current_umask() -> int:
    """The process umask, read without changing it where Linux shows it (os.umask sets it while reading)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _created(path: Path, create):
    """`create()` after making the folder of `path`; any OSError there is a WriteFaultError naming `path`."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return create()
    except OSError as exc:
        raise WriteFaultError.from_os_error(path, exc) from exc


def make_folder(folder: str | os.PathLike) -> Path:
    """`folder` and its parents, made when missing; any OSError is a WriteFaultError naming it."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WriteFaultError.from_os_error(folder, exc) from exc
    return folder


@contextmanager
def atomic_output(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """A temp path beside `path` that becomes `path` (one rename) when the block succeeds and is removed when it
    fails, so readers never see half a file. The file gets 0666 & ~umask, as open() would give it (mkstemp: 0600)."""
    path = Path(path)
    with write_faults_named(path):
        fd, tmp = _created(path, lambda: tempfile.mkstemp(prefix=f".{path.stem}.", suffix=suffix or path.suffix,
                                                           dir=path.parent))
        try:
            os.fchmod(fd, 0o666 & ~current_umask())
            os.close(fd)
            yield Path(tmp)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write through a temp file in the same folder and rename (see atomic_output), synced before the rename."""
    path = Path(path)
    with atomic_output(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    return path


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str, allow_nan=False) + "\n")


def append_jsonl(path: str | os.PathLike, records: Iterable[dict]) -> None:
    """Append records, one line each, synced, under a lock beside the log (O_APPEND alone is not atomic on NFS).

    A kill loses at most the lines being written; a refused write (full disk, I/O error) is cut back to the
    previous end of the log, so no half line stays, and ends the stage with WriteFaultError.
    """
    from filelock import SoftFileLease, Timeout

    path = Path(path)
    payload = "".join(json.dumps(rec, ensure_ascii=False, default=str, allow_nan=False) + "\n" for rec in records).encode()
    with write_faults_named(path):
        _created(path, lambda: None)
        lock = SoftFileLease(path.with_name(f".{path.name}.lock"), lease_duration=APPEND_LEASE_S)
        deadline = time.monotonic() + APPEND_WAIT_S
        while True:
            try:
                lock.acquire(timeout=min(ABANDONED_MARKER_S, max(0.0, deadline - time.monotonic())))
                break
            except Timeout as exc:
                if remove_abandoned_lease(Path(lock.lock_file)):
                    continue
                if time.monotonic() >= deadline:
                    raise SetupError(f"{path}: another process has held the append lock {lock.lock_file} for "
                                     f"{APPEND_WAIT_S:.0f}s; is a writer hung?") from exc
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
            try:
                start = os.fstat(fd).st_size
                try:
                    view = memoryview(payload)
                    while view:
                        view = view[os.write(fd, view):]
                    os.fsync(fd)
                except OSError:
                    with suppress(OSError):
                        os.ftruncate(fd, start)
                    raise
            finally:
                os.close(fd)
        finally:
            lock.release()


def remove_abandoned_lease(marker: Path) -> bool:
    """Remove a lease marker left empty for ABANDONED_MARKER_S by a process killed between creating and filling
    it: filelock's SoftFileLease waits on an empty marker forever (it reads no owner or expiry from it).

    Two launches may find the same abandoned marker: the one that moves it aside removes it, and a launch that
    moved a marker another one has made meanwhile (another inode) puts it back, so no live claim is dropped.
    Ages come from the file's mtime: a shared filesystem whose clock lags this host's by more than
    ABANDONED_MARKER_S could take a marker that is being filled."""
    try:
        seen = marker.stat()
        if seen.st_size or time.time() - seen.st_mtime <= ABANDONED_MARKER_S:
            return False
        aside = marker.with_name(f"{marker.name}.abandoned-{os.getpid()}-{time.monotonic_ns()}")
        os.rename(marker, aside)
    except FileNotFoundError:
        return False
    moved = aside.stat()
    if (moved.st_dev, moved.st_ino, moved.st_size) != (seen.st_dev, seen.st_ino, 0):
        with suppress(FileExistsError):
            os.link(aside, marker)  # back where it was, unless yet another launch made one since
    aside.unlink(missing_ok=True)
    return True


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


def file_sha256(path: str | os.PathLike) -> str:
    """'sha256:<hex>' of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return "sha256:" + digest.hexdigest()


def video_sha256s(run: RunDir, ids: Iterable[str]) -> dict[str, str | None]:
    """sample -> sha256 of its video as it is now (None when missing): what judge and score records store."""
    return {sid: file_sha256(run.video(sid)) if run.video(sid).is_file() else None for sid in ids}


# Seeds go to torch generators (which take at most 64 bits) and numpy's (which refuse negatives) and into JSON
# read by pandas (int64): one range fits them all.
SEED_RANGE = (0, 2**63 - 1)
SEED_KEYS = ("seed", "model.seed")


def config_value_problems(select: Callable[[str], Any]) -> list[str]:
    """Config values that pass their type check but could not be used: seeds outside SEED_RANGE and names that
    would put the run folder outside its root (omiti2v.paths.config_path_problems). `select(key)`: the resolved
    value, None when not set."""
    low, high = SEED_RANGE
    problems = [f"{key} {value}: must be an integer from {low} to 2**63-1 (what torch and numpy generators take)"
                for key in SEED_KEYS if isinstance(value := select(key), int) and not low <= value <= high]
    return problems + config_path_problems(select)


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
    """Commit of the harness checkout (with '+dirty' when it has local changes), or None outside git and for an
    installed wheel (whatever repository its environment sits in is not the harness's)."""
    repo = source_checkout()
    if repo is None:
        return None
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


def held_sample_ids(run: RunDir) -> set[str]:
    """Samples the run folder holds anything of: a line in generation.jsonl, judge.jsonl or scores.jsonl, or a
    video. What a summary of the folder covers (besides the invocation's own selection)."""
    held = {str(rec.get("sample_id")) for log in (run.generation_log, run.judge_log, run.scores_log)
            for rec in read_jsonl(log) if isinstance(rec, dict) and rec.get("sample_id") is not None}
    if run.videos.is_dir():
        held |= {p.stem for p in run.videos.glob("*.mp4") if not p.name.startswith(".")}
    return held


class RunFailedError(SetupError):
    """Every sample of a run failed: its summary is written (it lists the failures) and the run exits non-zero."""


def latest_records(records, key: tuple[str, ...]) -> list[dict]:
    """Keep the last record per key: a resumed or repeated stage supersedes earlier lines."""
    latest: dict[tuple, dict] = {}
    for rec in records:
        latest[tuple(rec.get(k) for k in key)] = rec
    return list(latest.values())
