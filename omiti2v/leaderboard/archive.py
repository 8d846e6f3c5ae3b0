"""Safe intake of a submission (a folder or a .zip) into a private staging folder.

Every member is checked before a byte is written: the member count read from the archive's end record (before
the central directory is loaded), relative POSIX names only (no absolute paths, drive letters or '..'), file
names that are safe stems, no links or special files, no duplicate names, at most `max_files` files, declared
sizes and compression ratios within the limits. Bytes are then stream-copied and counted, so an archive that
lies about its sizes (a decompression bomb) is cut off at the first excess of the per-file, total or ratio
limit; a damaged stream is one named error. Nothing is ever written outside the staging folder.
"""

from __future__ import annotations

import lzma
import os
import re
import shutil
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..paths import UnsafePathError, confined, stem_problem

CHUNK = 1 << 20
MiB = 1 << 20
# Compression ratios are checked once a member has produced this much: small text files compress well.
RATIO_GRACE_BYTES = 1 * MiB
_END_RECORD = b"PK\x05\x06"


class SubmissionRejected(ValueError):
    """A submission broke rules; one line per problem, each naming the file and the rule."""

    def __init__(self, *problems: str):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True)
class IntakeLimits:
    max_files: int
    max_file_bytes: int = 512 * MiB
    max_total_bytes: int = 64 * 1024 * MiB
    max_ratio: float = 200.0  # uncompressed / compressed bytes of one member (MP4s hardly compress)

    @property
    def max_members(self) -> int:
        """Entries of any kind (files and folders) an archive may list."""
        return 2 * self.max_files + 8


def shown(name: str) -> str:
    """A member name as messages show it: printable, on one line, cut short."""
    text = name if name.isprintable() else ascii(name)
    return text if len(text) <= 120 else text[:117] + "..."


def safe_member_name(name: str) -> PurePosixPath:
    """The member's relative path, or SubmissionRejected for absolute, drive-letter, backslash or '..' names."""
    if not name or "\x00" in name:
        raise SubmissionRejected(f"{shown(name)}: empty or NUL in the member name")
    if "\\" in name:
        raise SubmissionRejected(f"{shown(name)}: backslash in a member name (only '/' separators are allowed)")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise SubmissionRejected(f"{shown(name)}: absolute path in the archive")
    path = PurePosixPath(name)
    if ".." in path.parts:
        raise SubmissionRejected(f"{shown(name)}: '..' in a member path (would write outside the submission)")
    return path


def declared_members(archive: Path) -> int | None:
    """The member count in the zip's end record (read from the file's tail), None when it is not found."""
    with open(archive, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - (1 << 16) - 22))
        tail = f.read()
    at = tail.rfind(_END_RECORD)
    if at < 0 or len(tail) < at + 22:
        return None
    return struct.unpack("<H", tail[at + 10:at + 12])[0]


def _strip_common_folder(names: list[PurePosixPath]) -> list[PurePosixPath]:
    """Allow the usual wrapping: every file inside one top-level folder."""
    tops = {p.parts[0] for p in names if len(p.parts) > 1}
    if names and len(tops) == 1 and all(len(p.parts) > 1 for p in names):
        return [PurePosixPath(*p.parts[1:]) for p in names]
    return names


def _check_layout(names: list[PurePosixPath], limits: IntakeLimits, origin: str) -> list[PurePosixPath]:
    if len(names) > limits.max_files:
        raise SubmissionRejected(f"{origin}: too many files ({len(names)} > {limits.max_files})")
    names = _strip_common_folder(names)
    seen: set[str] = set()
    for p in names:
        if len(p.parts) != 1:
            raise SubmissionRejected(f"{origin}: {p}: files must sit at the top level (or in one wrapping folder)")
        if p.name in seen:
            raise SubmissionRejected(f"{origin}: duplicate file {p.name}")
        problem = stem_problem(p.name)
        if problem:
            raise SubmissionRejected(f"{origin}: file name {problem}")
        seen.add(p.name)
    return names


def _copy_counted(src, dst: Path, limit: int, name: str, budget: list[int], compressed: int | None = None,
                  max_ratio: float | None = None) -> None:
    """Stream src to dst counting bytes; stop at the per-file limit, the remaining total budget or (for an
    archive member of `compressed` bytes) the compression-ratio limit, before writing the excess."""
    written = 0
    with open(dst, "xb") as out:
        while chunk := src.read(CHUNK):
            written += len(chunk)
            budget[0] -= len(chunk)
            if written > limit:
                raise SubmissionRejected(f"{name}: larger than the per-file limit of {limit} bytes (actual bytes, not declared)")
            if budget[0] < 0:
                raise SubmissionRejected(f"{name}: the submission exceeds the total size limit (actual bytes, not declared)")
            if compressed is not None and written > RATIO_GRACE_BYTES and written > max_ratio * max(compressed, 1):
                raise SubmissionRejected(f"{name}: compression ratio above {max_ratio:g} (actual bytes, not declared)")
            out.write(chunk)


def stage_zip(archive: Path, staging: Path, limits: IntakeLimits) -> list[Path]:
    if archive.stat().st_size > limits.max_total_bytes:
        raise SubmissionRejected(f"{archive}: archive larger than the total size limit {limits.max_total_bytes}")
    declared = declared_members(archive)
    if declared is not None and declared > limits.max_members:
        raise SubmissionRejected(f"{archive}: {declared} members listed (at most {limits.max_members})")
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError, struct.error) as exc:
        raise SubmissionRejected(f"{archive}: not a readable zip archive ({exc})") from None
    with zf:
        if len(zf.infolist()) > limits.max_members:
            raise SubmissionRejected(f"{archive}: {len(zf.infolist())} members (at most {limits.max_members})")
        infos = [i for i in zf.infolist() if not i.is_dir()]
        for info in zf.infolist():
            safe_member_name(info.filename)
            mode = info.external_attr >> 16
            kind_bits = stat.S_IFMT(mode) if info.create_system == 3 else 0  # 0: no Unix file type recorded
            if kind_bits and kind_bits not in (stat.S_IFREG, stat.S_IFDIR):
                kind = "symlink" if stat.S_ISLNK(mode) else "special file"
                raise SubmissionRejected(f"{archive}: {shown(info.filename)}: {kind} in the archive")
            if info.flag_bits & 0x1:
                raise SubmissionRejected(f"{archive}: {shown(info.filename)}: encrypted member")
        names = _check_layout([safe_member_name(i.filename) for i in infos], limits, str(archive))
        declared = 0
        for info in infos:
            if info.file_size > limits.max_file_bytes:
                raise SubmissionRejected(f"{archive}: {shown(info.filename)}: declared size {info.file_size} > per-file limit {limits.max_file_bytes}")
            if info.file_size > RATIO_GRACE_BYTES and info.file_size > limits.max_ratio * max(info.compress_size, 1):
                raise SubmissionRejected(f"{archive}: {shown(info.filename)}: declared compression ratio above {limits.max_ratio:g}")
            declared += info.file_size
        if declared > limits.max_total_bytes:
            raise SubmissionRejected(f"{archive}: declared total size {declared} > limit {limits.max_total_bytes}")
        budget = [limits.max_total_bytes]
        staged = []
        for info, name in zip(infos, names, strict=True):
            dst = _inside(staging, name)
            try:
                with zf.open(info) as src:
                    _copy_counted(src, dst, limits.max_file_bytes, f"{archive}: {shown(info.filename)}", budget,
                                  info.compress_size, limits.max_ratio)
            except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, zlib.error, lzma.LZMAError,
                    NotImplementedError, RuntimeError, ValueError) as exc:
                reason = " ".join(str(exc).split())[:200] or type(exc).__name__
                raise SubmissionRejected(f"{archive}: {shown(info.filename)}: cannot be extracted ({reason})") from None
            staged.append(dst)
    return staged


def stage_folder(folder: Path, staging: Path, limits: IntakeLimits) -> list[Path]:
    entries = []
    for root, dirs, files in os.walk(folder, followlinks=False):
        for name in dirs + files:
            path = Path(root) / name
            st = path.lstat()
            rel = path.relative_to(folder).as_posix()
            if stat.S_ISLNK(st.st_mode):
                raise SubmissionRejected(f"{folder}: {rel}: symlink in the submission")
            if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
                raise SubmissionRejected(f"{folder}: {rel}: not a regular file")
            if stat.S_ISREG(st.st_mode):
                entries.append((path, PurePosixPath(rel), st.st_size))
    names = _check_layout([rel for _, rel, _ in entries], limits, str(folder))
    if sum(size for _, _, size in entries) > limits.max_total_bytes:
        raise SubmissionRejected(f"{folder}: total size > limit {limits.max_total_bytes}")
    budget = [limits.max_total_bytes]
    staged = []
    for (path, rel, size), name in zip(entries, names, strict=True):
        if size > limits.max_file_bytes:
            raise SubmissionRejected(f"{folder}: {rel}: size {size} > per-file limit {limits.max_file_bytes}")
        dst = _inside(staging, name)
        with open(path, "rb") as src:
            _copy_counted(src, dst, limits.max_file_bytes, f"{folder}: {rel}", budget)
        staged.append(dst)
    return staged


def _inside(staging: Path, name: PurePosixPath) -> Path:
    """The staged path of a member; refuses anything that would resolve outside the staging folder."""
    try:
        return confined(staging, name.name)
    except UnsafePathError:
        raise SubmissionRejected(f"{shown(str(name))}: would be written outside the submission") from None


def stage_submission(source: str | os.PathLike, staging: Path, limits: IntakeLimits) -> list[Path]:
    """Copy a submission's files into `staging` (which must not exist yet); on rejection remove it entirely."""
    source = Path(source)
    if not source.exists():
        raise SubmissionRejected(f"{source}: no such file or folder")
    if source.is_symlink():
        raise SubmissionRejected(f"{source}: the submission itself is a symlink")
    staging.mkdir(parents=True, exist_ok=False)
    try:
        if source.is_dir():
            return stage_folder(source, staging, limits)
        if zipfile.is_zipfile(source):
            return stage_zip(source, staging, limits)
        raise SubmissionRejected(f"{source}: a submission is a folder or a .zip archive")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
