"""The data layer: loading, filtering, hashing, and one clear error per way a benchmark can be broken."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from omiti2v.data import (
    MINI_ROOT,
    DatasetUnavailableError,
    DataValidationError,
    load_benchmark,
    load_local,
)
from omiti2v.data.cli import validate_data


@pytest.fixture
def mini_copy(tmp_path) -> Path:
    root = tmp_path / "bench"
    shutil.copytree(MINI_ROOT, root)
    return root


def edit_meta(root: Path, fn) -> list:
    meta = json.loads((root / "meta.json").read_text())
    fn(meta)
    (root / "meta.json").write_text(json.dumps(meta))
    return meta


def test_mini_benchmark_is_valid_and_balanced():
    bench = load_benchmark("mini")
    summary = bench.summary()
    assert summary["samples"] >= 12
    assert all(summary["main_category"][c] >= 4 for c in ("modification", "addition", "deletion"))
    assert len(summary["domain"]) >= 4
    for s in bench:
        assert 2 <= len(s.questions) <= 4
        assert s.load_image().size == s.resolution
    assert sum(p.stat().st_size for p in MINI_ROOT.rglob("*") if p.is_file()) < 1_000_000


def test_mini_generator_is_deterministic(tmp_path):
    script = MINI_ROOT.parent / "make_mini.py"
    subprocess.run([sys.executable, str(script), str(tmp_path)], check=True, capture_output=True)
    committed = {p.relative_to(MINI_ROOT): p.read_bytes() for p in MINI_ROOT.rglob("*") if p.is_file()}
    regenerated = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert regenerated == committed


def test_filters_and_limit():
    bench = load_benchmark("mini")
    dels = bench.filter(categories=["deletion"])
    assert len(dels) == 4 and {s.main_category for s in dels} == {"deletion"}
    assert load_benchmark("mini", domains=["Living Beings"]).ids == ["mini_4", "mini_5", "mini_8"]
    assert load_benchmark("mini", ids=["mini_3", "mini_0"]).ids == ["mini_0", "mini_3"]  # benchmark order
    assert load_benchmark("mini", categories=["addition"], limit=2).ids == ["mini_2", "mini_4"]
    with pytest.raises(ValueError, match="data.categories"):
        bench.filter(categories=["removal"])
    with pytest.raises(ValueError, match="data.ids.*nope"):
        bench.filter(ids=["nope"])


def test_content_hash_tracks_meta_and_image_bytes(mini_copy):
    base = load_local(mini_copy).content_hash()
    assert base == load_benchmark("mini").content_hash()
    assert base.startswith("sha256:") and len(base) == 71
    img = mini_copy / "images" / "mini_5.png"
    Image.open(img).convert("RGB").rotate(180).save(img)
    changed_image = load_local(mini_copy).content_hash()
    assert changed_image != base
    edit_meta(mini_copy, lambda m: m[0].update(prompt=m[0]["prompt"] + "!"))
    assert load_local(mini_copy).content_hash() not in (base, changed_image)
    # A filtered selection has its own hash.
    assert load_local(mini_copy).filter(limit=3).content_hash() != load_local(mini_copy).content_hash()


BREAKAGES = [
    # (description, mutation of the meta list, expected fragment naming the field)
    ("missing field", lambda m: m[2].pop("prompt"), "record 2 (id='mini_2'): field 'prompt': missing"),
    ("extra field", lambda m: m[1].update(colour="red"), "record 1 (id='mini_1'): field 'colour': unexpected field"),
    ("mistyped field", lambda m: m[3].update(domain=7), "record 3 (id='mini_3'): field 'domain': must be str, got int"),
    ("duplicate id", lambda m: m[5].update(id="mini_0"), "record 5 (id='mini_0'): field 'id': duplicate id (first used by record 0; ids are compared ignoring case)"),
    ("unknown main category", lambda m: m[4].update({"main-category": "removal"}),
     "record 4 (id='mini_4'): field 'main-category': unknown value 'removal'"),
    ("expected answer not yes/no", lambda m: m[6]["questions"][1].update(expected_answer="maybe"),
     "record 6 (id='mini_6'): field 'questions[1].expected_answer': must be 'yes' or 'no', got 'maybe'"),
    ("no questions", lambda m: m[7].update(questions=[]), "record 7 (id='mini_7'): field 'questions': no questions"),
    ("question field missing", lambda m: m[8]["questions"][0].pop("category"),
     "record 8 (id='mini_8'): field 'questions[0].category': missing"),
    ("missing image", lambda m: m[9].update({"image-path": "images/nothere.png"}),
     "record 9 (id='mini_9'): field 'image-path': image not found"),
    ("resolution mismatch", lambda m: m[10].update(resolution=[640, 384]),
     "record 10 (id='mini_10'): field 'resolution': [640, 384] does not match the image size [320, 192]"),
    ("malformed resolution", lambda m: m[11].update(resolution=[320]),
     "record 11 (id='mini_11'): field 'resolution': must be [width, height]"),
]


@pytest.mark.parametrize("what,mutate,expected", BREAKAGES, ids=[b[0] for b in BREAKAGES])
def test_each_breakage_is_reported_with_file_record_and_field(mini_copy, what, mutate, expected, capsys):
    edit_meta(mini_copy, mutate)
    files_before = {p: p.read_bytes() for p in mini_copy.rglob("*") if p.is_file()}
    with pytest.raises(DataValidationError) as err:
        load_local(mini_copy)
    meta_path = str(mini_copy.resolve() / "meta.json")
    matching = [e for e in err.value.errors if expected in e]
    assert matching, f"{what}: no error contains {expected!r}: {err.value.errors}"
    assert all(e.startswith(meta_path) for e in err.value.errors)
    # The CLI prints every error and exits non-zero; nothing in the dataset folder is written.
    rc = validate_data(type("A", (), {"path": [str(mini_copy)], "json": False})())
    out = capsys.readouterr().out
    assert rc == 1 and expected in out
    assert {p: p.read_bytes() for p in mini_copy.rglob("*") if p.is_file()} == files_before


def test_unreadable_image(mini_copy):
    (mini_copy / "images" / "mini_0.png").write_bytes(b"not a png at all")
    with pytest.raises(DataValidationError, match=r"record 0 \(id='mini_0'\): field 'image-path': unreadable image"):
        load_local(mini_copy)


def test_all_problems_reported_at_once(mini_copy):
    def several(m):
        m[0].pop("domain")
        m[3]["questions"][0]["expected_answer"] = "YES"
        m[5]["id"] = "mini_1"

    edit_meta(mini_copy, several)
    with pytest.raises(DataValidationError) as err:
        load_local(mini_copy)
    assert len(err.value.errors) == 3


def test_not_json_and_not_a_list(mini_copy):
    (mini_copy / "meta.json").write_text("{oops")
    with pytest.raises(DataValidationError, match="meta.json: not valid JSON"):
        load_local(mini_copy)
    (mini_copy / "meta.json").write_text('{"id": "x"}')
    with pytest.raises(DataValidationError, match="top level must be a JSON list"):
        load_local(mini_copy)


def test_cli_summary_on_valid_root():
    proc = subprocess.run([sys.executable, "-m", "omiti2v.cli", "validate-data", str(MINI_ROOT)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "valid, 12 samples, 31 questions" in proc.stdout
    assert "modification 4" in proc.stdout and "Living Beings 3" in proc.stdout


def test_hf_source_offline_gives_one_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("OMITI2V_DATA", raising=False)
    with pytest.raises(DatasetUnavailableError) as err:
        load_benchmark("hf")
    msg = str(err.value)
    assert "hf download AIPeanutman/OmitI2V --repo-type dataset" in msg
    assert "data.root" in msg and "OMITI2V_DATA" in msg


def test_hf_source_uses_local_root_when_given(monkeypatch):
    monkeypatch.setenv("OMITI2V_DATA", str(MINI_ROOT))
    bench = load_benchmark("hf")
    assert len(bench) == 12 and bench.source == "hf:AIPeanutman/OmitI2V"


def test_local_source_needs_a_root(monkeypatch):
    monkeypatch.delenv("OMITI2V_DATA", raising=False)
    with pytest.raises(DatasetUnavailableError, match="data.root"):
        load_benchmark("local")
