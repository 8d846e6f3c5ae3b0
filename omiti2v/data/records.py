"""Typed OmitI2V records and their validation against the official `meta.json` layout."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from ..errors import SetupError

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


def parse_records(meta: Any, meta_path: Path, root: Path, check_images: bool = True) -> list[Sample]:
    """Validate the decoded `meta.json` list and build samples; raise `DataValidationError` listing all problems."""
    if not isinstance(meta, list):
        raise DataValidationError([f"{meta_path}: top level must be a JSON list of records, got {type(meta).__name__}"])
    errors: list[str] = []
    samples: list[Sample] = []
    seen: dict[str, int] = {}
    for index, rec in enumerate(meta):
        rid = rec.get("id") if isinstance(rec, dict) else None
        where = f"{meta_path}: record {index} (id={rid!r})"
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
            if rid in seen:
                bad("id", f"duplicate id (first used by record {seen[rid]})")
            else:
                seen[rid] = index
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
                    if str(q["id"]) in qids:
                        bad(f"{qwhere}.id", f"duplicate question id {q['id']!r}")
                    qids.add(str(q["id"]))
                if all(_is(q.get(n), t) for n, t in QUESTION_FIELDS.items()):
                    questions.append(Question(str(q["id"]), q["question"], ans, q["category"]))
        image_path = None
        if isinstance(rec.get("image-path"), str):
            image_path = (root / rec["image-path"]).resolve()
            if check_images:
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


def _check_image(path: Path, resolution: Any, bad) -> None:
    if not path.is_file():
        bad("image-path", f"image not found: {path}")
        return
    try:
        with Image.open(path) as img:
            img.verify()
        with Image.open(path) as img:
            size = img.size
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        bad("image-path", f"unreadable image {path}: {exc}")
        return
    if isinstance(resolution, list) and len(resolution) == 2 and list(size) != list(resolution):
        bad("resolution", f"{resolution} does not match the image size {list(size)} of {path.name}")
