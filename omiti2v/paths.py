"""Paths built from data (sample ids, entry names, member names): one rule for safe stems, one confinement helper.

Ids become file names in videos/, sidecars, staging folders, exports and leaderboard runs, and benchmark copies
come from strangers. `check_stem` is the validation rule; `confined` is the defence in depth every writer uses.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from .errors import SetupError

MAX_STEM_CHARS = 128
_STEM = re.compile(r"[A-Za-z0-9._-]+")
# Device names Windows reserves in every folder, with any extension ("aux.mp4" is the device too).
WINDOWS_RESERVED = frozenset({"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)),
                              *(f"lpt{i}" for i in range(10))})


class UnsafePathError(SetupError, ValueError):
    """A path built from data would leave its root (traversal, absolute part, symlink) or is not a safe stem."""


def stem_problem(value: object) -> str | None:
    """Why `value` is not a safe, portable file stem (letters, digits, `._-`, no leading dot, at most 128
    characters), or None when it is one."""
    if not isinstance(value, str):
        return f"must be a string, got {type(value).__name__}"
    if not value:
        return "empty"
    if len(value) > MAX_STEM_CHARS:
        return f"{len(value)} characters (at most {MAX_STEM_CHARS})"
    if not _STEM.fullmatch(value):
        bad = sorted({c for c in value if not _STEM.fullmatch(c)})
        return f"{value[:40]!r}: characters {''.join(bad)!r} not allowed (letters, digits, '.', '_', '-' only)"
    if value.startswith("."):
        return f"{value[:40]!r}: must not start with '.'"
    if value.endswith("."):
        return f"{value[:40]!r}: must not end with '.' (Windows drops it: 'a.' and 'a' are one file there)"
    if value.split(".")[0].lower() in WINDOWS_RESERVED:
        return f"{value[:40]!r}: {value.split('.')[0]} is a device name on Windows, not a file name"
    return None


def open_regular(path: str | os.PathLike) -> BinaryIO:
    """`path` opened for binary reading only when it is a regular file. It is opened without blocking (a FIFO
    would wait for a writer forever) and checked on the open file, so a file swapped after an earlier check
    cannot slip through; ValueError says what it is instead, OSError when it cannot be opened."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            raise ValueError(f"not a regular file ({file_kind(mode)})")
        os.set_blocking(descriptor, True)
        return open(descriptor, "rb")  # noqa: SIM115 - the caller closes it
    except BaseException:
        os.close(descriptor)
        raise


def file_kind(mode: int) -> str:
    """What a file of this st_mode is, for messages ("a FIFO", "a character device", ...)."""
    kinds = ((stat.S_ISDIR, "a folder"), (stat.S_ISLNK, "a symlink"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
             (stat.S_ISREG, "a regular file"))
    return next((name for test, name in kinds if test(mode)), "not a regular file")


# Config values that become parts of the run folder's path (conf/config.yaml run_name): names are whole parts,
# suffixes are appended to one.
CONFIG_NAMES = ("data.name", "model.name", "asm.name", "schedule.name", "judge.name", "scorer.name")
CONFIG_SUFFIXES = ("variant", "profile_suffix")


def config_path_problems(select: Callable[[str], object]) -> list[str]:
    """Why config values that name folders would make a path leave its root (the rule sample ids follow), one
    line each; `select(key)` gives a key's resolved value, None when it is not set."""
    problems = []
    for key in CONFIG_NAMES:
        value = select(key)
        if value is not None and (problem := stem_problem(value)):
            problems.append(f"{key}: {problem}; it names a folder of the run's path")
    for key in CONFIG_SUFFIXES:
        value = select(key)
        if value not in (None, "") and not (isinstance(value, str) and _STEM.fullmatch(value)):
            problems.append(f"{key} {str(value)[:60]!r}: only letters, digits, '.', '_' and '-' may extend the run "
                            "folder's name (no '/')")
    run_name = select("run_name")
    if isinstance(run_name, str) and not problems:
        for part in run_name.split("/"):
            if problem := stem_problem(part):
                problems.append(f"run_name {run_name[:80]!r}: folder {problem}")
                break
    return problems


def confined(root: str | os.PathLike, *parts: str) -> Path:
    """`root / parts...`, refusing any result that resolves (symlinks included) outside `root`.

    The returned path keeps the caller's spelling of `root`, so messages and relative paths stay unchanged.
    """
    root = Path(root)
    for part in parts:
        if not part or "\x00" in part or Path(part).is_absolute() or "\\" in part:
            raise UnsafePathError(f"{part!r}: not a relative path part (under {root})")
    path = root.joinpath(*parts)
    real_root = Path(os.path.realpath(root))
    real = Path(os.path.realpath(path))
    if real != real_root and real_root not in real.parents:
        raise UnsafePathError(f"{'/'.join(parts)!r}: resolves outside {root}")
    return path


# conf/, benchmark_data/mini and results/paper: top-level folders of a source checkout, which setup.py copies into
# a wheel as omiti2v/_data/. A checkout (editable install or PYTHONPATH) has no _data, so it reads the folders
# users edit; an installed wheel reads its own copy.
PACKAGE_DIR = Path(__file__).resolve().parent
BUNDLED_DIR = PACKAGE_DIR / "_data"


def source_checkout() -> Path | None:
    """The checkout this package runs from, or None for an installed wheel (its files are a bundled copy)."""
    return None if BUNDLED_DIR.is_dir() else PACKAGE_DIR.parent


def shipped(name: str) -> Path:
    """A folder shipped with the harness (`conf`, `benchmark_data/mini`, `results/paper`), wheel or checkout."""
    return BUNDLED_DIR / name if source_checkout() is None else PACKAGE_DIR.parent / name


CONF_DIR = shipped("conf")
