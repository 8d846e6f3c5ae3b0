"""Safe intake of a submission (a folder or a .zip) into a private staging folder.

The submission itself must be a folder or a regular file (checked with lstat before anything is read: a FIFO or
a device is never opened). Every member is checked before a byte is written: the member count read from the
archive's end record (before the central directory is loaded), relative POSIX names only (no absolute paths,
drive letters or '..'), file names that are safe stems, no links or special files, no duplicate names, at most
`max_files` files, folders at most one level deep (walked without recursion), declared sizes and compression
ratios within the limits, and the declared total within the free space of the staging filesystem. Bytes are
then stream-copied and counted, so an archive that lies about its sizes (a decompression bomb) is cut off at the
first excess of the per-file, total or ratio limit, and an .mp4 member whose first bytes are no MP4 header at
once; a damaged stream is one named error. Nothing is ever written outside the staging folder.
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
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ..paths import UnsafePathError, confined, file_kind, open_regular, stem_problem
from ..runs import make_folder, require_free_space, write_faults_named

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


# What the total size limit allows per expected file by default: far above the size of a generated video, far
# below what a bomb of members just under the per-file limit would stage.
VIDEO_BYTES_PER_ID = 64 * MiB


@dataclass(frozen=True)
class IntakeLimits:
    max_files: int
    max_file_bytes: int = 512 * MiB
    max_total_bytes: int = 64 * 1024 * MiB
    max_ratio: float = 200.0  # uncompressed / compressed bytes of one member (MP4s hardly compress)
    expected: frozenset[str] = field(default=frozenset(), compare=False)  # the file names a submission holds

    @classmethod
    def for_files(cls, names: list[str], max_file_bytes: int | None = None,
                  max_total_bytes: int | None = None) -> IntakeLimits:
        """Limits for a submission of exactly `names`: as many files, VIDEO_BYTES_PER_ID per file in all by default."""
        return cls(len(names), max_file_bytes or cls.max_file_bytes,
                   max_total_bytes or VIDEO_BYTES_PER_ID * len(names), expected=frozenset(names))

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
        unexpected = sorted({p.name for p in names} - limits.expected)
        which = f": unexpected {', '.join(shown(n) for n in unexpected[:5])}{'...' if len(unexpected) > 5 else ''}" \
            if limits.expected and unexpected else ""
        raise SubmissionRejected(f"{origin}: too many files ({len(names)} > {limits.max_files}, one {{id}}.mp4 per "
                                 f"benchmark id and submission.yaml){which}")
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
    """Stream src to dst counting bytes; stop at the per-file limit, the remaining total budget, (for an archive
    member of `compressed` bytes) the compression-ratio limit, or an .mp4 whose first bytes are no MP4 header,
    before writing the excess. A refused write names the staging area (WriteFaultError)."""
    written = 0
    with write_faults_named(dst.parent.parent), open(dst, "xb") as out:
        while chunk := src.read(CHUNK):
            if not written and dst.suffix == ".mp4" and len(chunk) >= 12 and chunk[4:8] != b"ftyp":
                raise SubmissionRejected(f"{name}: not an MP4 video (no 'ftyp' box at the start)")
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
        why = "no end-of-archive record: truncated or not a zip" if declared is None else exc
        raise SubmissionRejected(f"{archive}: not a readable zip archive ({why})") from None
    with zf:
        if len(zf.infolist()) > limits.max_members:
            raise SubmissionRejected(f"{archive}: {len(zf.infolist())} members (at most {limits.max_members})")
        infos = [i for i in zf.infolist() if not i.is_dir()]
        if not infos:
            raise SubmissionRejected(f"{archive}: the archive holds no files (expected one {{id}}.mp4 per benchmark "
                                     "id and submission.yaml)")
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
        require_free_space(staging.parent, declared, "staging the submission")
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


def _folder_files(folder: Path, limits: IntakeLimits) -> list[tuple[Path, PurePosixPath, int]]:
    """(path, relative name, size) of the folder's files, listed without recursion and without following links:
    files at the top level or inside folders of the top level, any deeper folder refused as soon as it is seen."""
    files, pending, listed = [], [folder], 0
    while pending:
        current, children = pending.pop(), []
        try:
            with os.scandir(current) as scan:
                for child in scan:
                    listed += 1
                    if listed > limits.max_members:
                        raise SubmissionRejected(f"{folder}: more than {limits.max_members} files and folders")
                    children.append(child)
        except OSError as exc:
            raise SubmissionRejected(f"{folder}: {shown(str(current.relative_to(folder)))}: cannot be listed "
                                     f"({exc.strerror or exc})") from None
        for child in sorted(children, key=lambda e: e.name):
            path = Path(child.path)
            rel = path.relative_to(folder).as_posix()
            st = child.stat(follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                raise SubmissionRejected(f"{folder}: {shown(rel)}: symlink in the submission")
            if stat.S_ISDIR(st.st_mode):
                if current != folder:
                    raise SubmissionRejected(f"{folder}: {shown(rel)}: files must sit at the top level (or in one "
                                             "wrapping folder)")
                pending.append(path)
            elif stat.S_ISREG(st.st_mode):
                files.append((path, PurePosixPath(rel), st.st_size))
            else:
                raise SubmissionRejected(f"{folder}: {shown(rel)}: not a regular file ({file_kind(st.st_mode)})")
    return sorted(files, key=lambda f: f[1])


def stage_folder(folder: Path, staging: Path, limits: IntakeLimits) -> list[Path]:
    entries = _folder_files(folder, limits)
    names = _check_layout([rel for _, rel, _ in entries], limits, str(folder))
    total = sum(size for _, _, size in entries)
    if total > limits.max_total_bytes:
        raise SubmissionRejected(f"{folder}: total size {total} > limit {limits.max_total_bytes}")
    require_free_space(staging.parent, total, "staging the submission")
    budget = [limits.max_total_bytes]
    staged = []
    for (path, rel, size), name in zip(entries, names, strict=True):
        if size > limits.max_file_bytes:
            raise SubmissionRejected(f"{folder}: {rel}: size {size} > per-file limit {limits.max_file_bytes}")
        dst = _inside(staging, name)
        try:
            src = open_regular(path)
        except (OSError, ValueError) as exc:
            raise SubmissionRejected(f"{folder}: {rel}: cannot be read ({getattr(exc, 'strerror', None) or exc})") from None
        with src:
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
    try:
        st = source.lstat()
    except OSError as exc:
        raise SubmissionRejected(f"{source}: no such file or folder" if isinstance(exc, FileNotFoundError)
                                 else f"{source}: cannot be read ({exc.strerror or exc})") from None
    if stat.S_ISLNK(st.st_mode):
        raise SubmissionRejected(f"{source}: the submission itself is a symlink")
    if not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):
        raise SubmissionRejected(f"{source}: {file_kind(st.st_mode)}, not a folder or a .zip archive")
    if stat.S_ISREG(st.st_mode):
        _check_zip_file(source, st.st_size)
    make_folder(staging.parent)  # a refusal names the staging area, never the submission's private folder
    with write_faults_named(staging.parent):
        staging.mkdir()
    try:
        if stat.S_ISDIR(st.st_mode):
            return stage_folder(source, staging, limits)
        return stage_zip(source, staging, limits)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _check_zip_file(source: Path, size: int) -> None:
    """A regular file is taken as a zip when it starts like one or is named .zip; otherwise it is refused."""
    if size == 0:
        raise SubmissionRejected(f"{source}: an empty file (0 bytes), not a folder or a .zip archive")
    try:
        with open_regular(source) as f:
            magic = f.read(4)
    except (OSError, ValueError) as exc:
        raise SubmissionRejected(f"{source}: cannot be read ({getattr(exc, 'strerror', None) or exc})") from None
    if magic[:2] != b"PK" and source.suffix.lower() != ".zip":
        raise SubmissionRejected(f"{source}: a submission is a folder or a .zip archive (this file does not start "
                                 "like a zip)")
