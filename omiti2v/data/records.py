"""Typed OmitI2V records and their validation against the official `meta.json` layout."""

from __future__ import annotations

import os
import stat
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from ..errors import SetupError
from ..paths import UnsafePathError, confined, stem_problem
from ..safeload import env_limit

MAIN_CATEGORIES = ("modification", "addition", "deletion")
ANSWERS = ("yes", "no")
# Fields of one record in the official layout, with the JSON types they must have.
REQUIRED_FIELDS: dict[str, type | tuple[type, ...]] = {
    "id": str,
    "image-path": str,
    "prompt": str,
    "resolution": list,
    "expected-change": str,
    "main-category": str,
    "sub-category": str,
    "domain": str,
    "questions": list,
}
# The dataset card names an image style but no field for it: accept the plausible spellings.
OPTIONAL_FIELDS: dict[str, type] = {"style": str, "image-style": str}
QUESTION_FIELDS: dict[str, type | tuple[type, ...]] = {
    "id": (str, int),
    "question": str,
    "expected_answer": str,
    "category": str,
}


# Input images are decoded whole at validation time; above this many pixels an image is refused (not decoded).
MAX_IMAGE_PIXELS = env_limit("OMITI2V_MAX_IMAGE_PIXELS", 4096 * 4096)
MAX_IMAGE_BYTES = env_limit("OMITI2V_MAX_IMAGE_BYTES", 64 << 20)
# OmitI2V has 367 records of at most 6 questions; every question becomes a judge prompt and a log line.
MAX_RECORDS = env_limit("OMITI2V_MAX_RECORDS", 100_000)
MAX_QUESTIONS = env_limit("OMITI2V_MAX_QUESTIONS", 64)
# Validation stops collecting after this many problems (a file of a million broken records stays one screen).
MAX_PROBLEMS = 1000


class DataValidationError(SetupError, ValueError):
    """Every problem found in a benchmark, one line each (file, record index and id, field)."""

    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__(f"{len(errors)} problem(s) in the benchmark:\n" + "\n".join(f"  - {e}" for e in errors))


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    expected_answer: str  # "yes" | "no"
    category: str


@dataclass(frozen=True)
class Sample:
    id: str
    image_path: Path  # absolute
    prompt: str
    resolution: tuple[int, int]  # (width, height)
    expected_change: str
    main_category: str
    sub_category: str
    domain: str
    questions: tuple[Question, ...]
    style: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def load_image(self) -> Image.Image:
        with Image.open(self.image_path) as img:
            return img.convert("RGB")


def _type_name(t: type | tuple[type, ...]) -> str:
    return " or ".join(x.__name__ for x in t) if isinstance(t, tuple) else t.__name__


def _is(value: Any, t: type | tuple[type, ...]) -> bool:
    # bool is an int in Python but never a valid id/resolution here.
    return isinstance(value, t) and not isinstance(value, bool)


def _short(value: Any) -> str:
    """repr of an id for messages, cut short (ids come from strangers and may be huge)."""
    text = repr(value[:60] if isinstance(value, str) else value)
    return text if len(text) <= 80 else text[:77] + "..."


def parse_records(meta: Any, meta_path: Path, root: Path, check_images: bool = True) -> list[Sample]:
    """Validate the decoded `meta.json` list and build samples; raise `DataValidationError` listing all problems."""
    if not isinstance(meta, list):
        raise DataValidationError([f"{meta_path}: top level must be a JSON list of records, got {type(meta).__name__}"])
    if not meta:
        raise DataValidationError([f"{meta_path}: holds no records (an empty list is not a benchmark)"])
    if len(meta) > MAX_RECORDS:
        raise DataValidationError([f"{meta_path}: {len(meta)} records (at most {MAX_RECORDS}, OMITI2V_MAX_RECORDS)"])
    errors: list[str] = []
    samples: list[Sample] = []
    seen: dict[str, int] = {}
    for index, rec in enumerate(meta):
        if len(errors) >= MAX_PROBLEMS:
            errors.append(f"{meta_path}: stopped after {MAX_PROBLEMS} problems, at record {index} of {len(meta)}")
            break
        rid = rec.get("id") if isinstance(rec, dict) else None
        where = f"{meta_path}: record {index} (id={_short(rid)})"
        if not isinstance(rec, dict):
            errors.append(f"{where}: must be a JSON object, got {type(rec).__name__}")
            continue
        before = len(errors)

        def bad(field_name: str, problem: str, _where: str = where) -> None:
            errors.append(f"{_where}: field '{field_name}': {problem}")

        for name, typ in REQUIRED_FIELDS.items():
            if name not in rec:
                bad(name, "missing")
            elif not _is(rec[name], typ):
                bad(name, f"must be {_type_name(typ)}, got {type(rec[name]).__name__}")
        for name, value in rec.items():
            if name in OPTIONAL_FIELDS:
                if not _is(value, OPTIONAL_FIELDS[name]):
                    bad(name, f"must be {_type_name(OPTIONAL_FIELDS[name])}, got {type(value).__name__}")
            elif name not in REQUIRED_FIELDS:
                bad(name, "unexpected field")
        if isinstance(rid, str):
            problem = stem_problem(rid)
            if problem:
                bad("id", f"not a safe file name: {problem}")
            elif rid.lower() in seen:
                bad("id", f"duplicate id (first used by record {seen[rid.lower()]}; ids are compared ignoring case)")
            else:
                seen[rid.lower()] = index
        cat = rec.get("main-category")
        if isinstance(cat, str) and cat not in MAIN_CATEGORIES:
            bad("main-category", f"unknown value {cat!r}; expected one of {', '.join(MAIN_CATEGORIES)}")
        res = rec.get("resolution")
        if isinstance(res, list) and not (len(res) == 2 and all(_is(v, int) and v > 0 for v in res)):
            bad("resolution", f"must be [width, height] with two positive integers, got {res!r}")
        questions: list[Question] = []
        qs = rec.get("questions")
        if isinstance(qs, list):
            if not qs:
                bad("questions", "no questions")
            if len(qs) > MAX_QUESTIONS:
                bad("questions", f"{len(qs)} questions (at most {MAX_QUESTIONS}, OMITI2V_MAX_QUESTIONS)")
                qs = []
            qids: set[str] = set()
            for qi, q in enumerate(qs):
                qwhere = f"questions[{qi}]"
                if not isinstance(q, dict):
                    bad(qwhere, f"must be a JSON object, got {type(q).__name__}")
                    continue
                for name, typ in QUESTION_FIELDS.items():
                    if name not in q:
                        bad(f"{qwhere}.{name}", "missing")
                    elif not _is(q[name], typ):
                        bad(f"{qwhere}.{name}", f"must be {_type_name(typ)}, got {type(q[name]).__name__}")
                for name in q:
                    if name not in QUESTION_FIELDS:
                        bad(f"{qwhere}.{name}", "unexpected field")
                ans = q.get("expected_answer")
                if isinstance(ans, str) and ans not in ANSWERS:
                    bad(f"{qwhere}.expected_answer", f"must be 'yes' or 'no', got {ans!r}")
                if _is(q.get("id"), (str, int)):
                    problem = stem_problem(str(q["id"]))
                    if problem:
                        bad(f"{qwhere}.id", f"not a safe file name: {problem}")
                    elif str(q["id"]).lower() in qids:
                        bad(f"{qwhere}.id", f"duplicate question id {q['id']!r}, ignoring case")
                    qids.add(str(q["id"]).lower())
                if all(_is(q.get(n), t) for n, t in QUESTION_FIELDS.items()):
                    questions.append(Question(str(q["id"]), q["question"], ans, q["category"]))
        image_path = None
        if isinstance(rec.get("image-path"), str):
            image_path = _image_inside(root, rec["image-path"], bad)
            if image_path is not None and check_images:
                _check_image(image_path, res, bad)
        if len(errors) == before:
            style = next((rec[n] for n in OPTIONAL_FIELDS if n in rec), None)
            samples.append(
                Sample(
                    id=rid,
                    image_path=image_path,
                    prompt=rec["prompt"],
                    resolution=(res[0], res[1]),
                    expected_change=rec["expected-change"],
                    main_category=cat,
                    sub_category=rec["sub-category"],
                    domain=rec["domain"],
                    questions=tuple(questions),
                    style=style,
                    raw=rec,
                )
            )
    if errors:
        raise DataValidationError(errors)
    return samples


def _image_inside(root: Path, relative: str, bad) -> Path | None:
    """The resolved image path when it stays inside the dataset root (symlinks included), else None."""
    try:
        return Path(os.path.realpath(confined(root, *relative.split("/"))))
    except UnsafePathError:
        bad("image-path", f"{relative[:80]!r} points outside the dataset root {root} (must be a relative path inside it)")
        return None


def _check_image(path: Path, resolution: Any, bad) -> None:
    """Decode the whole image now (a broken one is found before a run), bounded in pixels and bytes."""
    try:
        st = path.stat()
    except OSError:
        bad("image-path", f"image not found: {path}")
        return
    if not stat.S_ISREG(st.st_mode):
        bad("image-path", f"not a regular file: {path}")
        return
    if st.st_size > MAX_IMAGE_BYTES:
        bad("image-path", f"{path.name}: {st.st_size} bytes, more than {MAX_IMAGE_BYTES} (OMITI2V_MAX_IMAGE_BYTES)")
        return
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                size = img.size
                if size[0] * size[1] > MAX_IMAGE_PIXELS:
                    bad("image-path", f"{path.name}: {size[0]}x{size[1]} pixels, more than {MAX_IMAGE_PIXELS} "
                                      "(OMITI2V_MAX_IMAGE_PIXELS)")
                    return
                img.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        bad("image-path", f"{path.name}: refused as a decompression bomb ({exc})")
        return
    except Exception as exc:  # noqa: BLE001 - any decoder failure on an untrusted file is one named problem
        bad("image-path", f"unreadable image {path}: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}")
        return
    if isinstance(resolution, list) and len(resolution) == 2 and list(size) != list(resolution):
        bad("resolution", f"{resolution} does not match the image size {list(size)} of {path.name}")
