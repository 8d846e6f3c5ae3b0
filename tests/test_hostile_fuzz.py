"""Property tests of the parsers and the intake on random input: random JSON and YAML never escape as anything
but the named ParseError, random zip member lists only as SubmissionRejected, and random mutations of a valid
meta.json only as DataValidationError, never writing a file outside the temporary root."""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import zipfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omiti2v.data import MINI_ROOT, DataValidationError, load_local
from omiti2v.leaderboard.archive import IntakeLimits, SubmissionRejected, stage_submission
from omiti2v.paths import stem_problem
from omiti2v.runs import RunDir
from omiti2v.safeload import ParseError, loads_json, loads_yaml

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
RECORDS = json.loads((MINI_ROOT / "meta.json").read_text())[:2]
NASTY = st.sampled_from(["", "/", "\\", "..", "../", "/etc/passwd", "\x00", "\u202e", "\u200b", "C:", ".", "~",
                         "a" * 300, "*", "?", "%s", "\ud800", "\n", "mini_0", "MINI_0"])
TEXT = st.one_of(st.text(max_size=40), NASTY, st.lists(NASTY, max_size=4).map("".join))
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(min_value=10**40, max_value=10**60),
                    st.floats(allow_nan=True, allow_infinity=True), TEXT)
TREES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                      st.dictionaries(TEXT, inner, max_size=4)), max_leaves=20)
YAML_BITS = st.lists(st.sampled_from(["&a ", "*a", "[", "]", "{", "}", ": ", "- ", "!!python/name:os.system ", "? ",
                                      "\n", "  ", "'", '"', "#", "|", ">", "%YAML 1.1\n", "---\n", "1e999", ".nan",
                                      "9" * 50, "key", "<<: ", "\t", "\x00", "\\u"]), max_size=40).map("".join)


def text_of(tree) -> str:
    return json.dumps(tree, allow_nan=True)


@FUZZ
@given(st.one_of(TREES.map(text_of), st.text(max_size=200), TREES.map(text_of).map(lambda t: "[" * 200 + t)))
def test_random_json_is_parsed_or_refused_by_name(text):
    try:
        value = loads_json(text, "fuzz.json")
    except ParseError as exc:
        assert str(exc).startswith("fuzz.json: ") and "\n" not in str(exc)
        return
    json.dumps(value, allow_nan=False)  # whatever is accepted is strict, writable JSON


@FUZZ
@given(st.one_of(YAML_BITS, st.text(max_size=200),
                 TREES.map(lambda t: yaml.safe_dump(t, allow_unicode=True) if _dumpable(t) else "x")))
def test_random_yaml_is_parsed_or_refused_by_name(text):
    try:
        loads_yaml(text, "fuzz.yaml")
    except ParseError as exc:
        assert str(exc).startswith("fuzz.yaml: ") and "\n" not in str(exc)


def _dumpable(tree) -> bool:
    try:
        yaml.safe_dump(tree)
        return True
    except (yaml.YAMLError, UnicodeEncodeError):
        return False


MEMBER_NAMES = st.lists(st.one_of(TEXT, st.sampled_from(["submission.yaml", "mini_0.mp4", "dir/", "a/b.mp4",
                                                        "../x.mp4", "/abs.mp4", "x/../../y.mp4"])), max_size=8)


@FUZZ
@pytest.mark.filterwarnings("ignore:Duplicate name")
@given(names=MEMBER_NAMES, payload=st.binary(max_size=64))
def test_random_zip_member_lists_are_staged_or_rejected_by_name(names, payload):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        archive = root / "sub.zip"
        with zipfile.ZipFile(archive, "w") as zf:
            for name in names:
                with contextlib.suppress(ValueError, UnicodeEncodeError, IndexError):  # names zipfile cannot write
                    zf.writestr(name, payload)
        staging = root / "board" / "staging" / "x"
        try:
            staged = stage_submission(archive, staging, IntakeLimits(max_files=13))
        except SubmissionRejected as exc:
            assert all("\n" not in p for p in exc.problems)
            assert not staging.exists(), "a rejected submission left its staging folder"
            staged = []
        assert all(staging in p.parents and stem_problem(p.name) is None for p in staged)
        written = [p for p in root.rglob("*") if p.is_file() and p != archive and staging not in p.parents]
        assert written == [], written


FIELDS = st.sampled_from(["id", "image-path", "prompt", "resolution", "questions", "main-category", "style", "extra"])


@st.composite
def mutated_meta(draw):
    records = json.loads(json.dumps(RECORDS))
    for _ in range(draw(st.integers(1, 4))):
        rec = records[draw(st.integers(0, len(records) - 1))]
        field, action = draw(FIELDS), draw(st.sampled_from(["set", "delete", "id", "question", "huge"]))
        if action == "delete":
            rec.pop(field, None)
        elif action == "id":
            rec["id"] = draw(TEXT)
        elif action == "question" and isinstance(rec.get("questions"), list) and rec["questions"] \
                and isinstance(rec["questions"][0], dict):
            rec["questions"][0][draw(st.sampled_from(["id", "question", "expected_answer", "new"]))] = draw(TREES)
        elif action == "huge":
            rec[field] = "\u00e9" * 200_000
        else:
            rec[field] = draw(TREES)
    return draw(st.sampled_from([json.dumps(records, allow_nan=True), json.dumps(records[0], allow_nan=True)]))


@FUZZ
@given(mutated_meta())
def test_random_meta_mutations_never_crash_nor_write_outside(meta_text):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "bench"
        (root / "images").mkdir(parents=True)
        for rec in RECORDS:
            shutil.copy(MINI_ROOT / rec["image-path"], root / rec["image-path"])
        (root / "meta.json").write_text(meta_text, encoding="utf-8", errors="surrogatepass")
        before = sorted(Path(tmp).rglob("*"))
        try:
            bench = load_local(root)
        except DataValidationError as exc:
            assert exc.errors and all(isinstance(e, str) for e in exc.errors)
        else:
            run = RunDir(Path(tmp) / "run")
            for sid in bench.ids:
                assert stem_problem(sid) is None and run.video(sid).parent == run.videos
        after = [p for p in sorted(Path(tmp).rglob("*")) if Path(tmp) / "run" not in (p, *p.parents)]
        assert after == before
