"""The benchmark stored as a `datasets` dataset (save_to_disk folder or Parquet with an image column): the same
samples and content hash as its meta.json folder, the same validation rules, and images that stay inside."""

from __future__ import annotations

import json

import datasets
import pytest

from omiti2v.cli import main
from omiti2v.data import DataValidationError, load_benchmark, load_local
from omiti2v.data.dataset_source import benchmark_to_dataset
from omiti2v.data.records import parse_records

MINI = load_benchmark("mini")


@pytest.fixture(autouse=True)
def image_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("OMITI2V_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(params=["save_to_disk", "parquet", "dataset_dict"])
def stored(request, tmp_path):
    ds = benchmark_to_dataset(list(MINI))
    root = tmp_path / "mini-datasets"
    if request.param == "save_to_disk":
        ds.save_to_disk(str(root))
    elif request.param == "parquet":
        ds.to_parquet(str(root / "data" / "test-00000-of-00001.parquet"))
    else:
        datasets.DatasetDict({"test": ds}).save_to_disk(str(root))
    return root


def test_same_samples_and_content_hash_as_the_folder(stored, image_cache):
    bench = load_local(stored)
    assert bench.source == f"datasets:{stored}"
    assert bench.content_hash() == MINI.content_hash()
    assert bench.ids == MINI.ids and [s.raw for s in bench] == [s.raw for s in MINI]
    assert [(s.questions, s.resolution, s.style) for s in bench] == [(s.questions, s.resolution, s.style) for s in MINI]
    for mine, theirs in zip(bench, MINI, strict=True):
        assert mine.image_path.is_relative_to(image_cache)
        assert mine.image_path.read_bytes() == theirs.image_path.read_bytes()
    picked = load_benchmark("local", root=str(stored), categories=["deletion"], limit=2)
    assert picked.content_hash() == MINI.filter(categories=["deletion"], limit=2).content_hash()
    assert load_local(stored).content_hash() == MINI.content_hash()  # reuses the extracted images


def test_validate_data_accepts_a_datasets_copy(stored, capsys):
    assert main(["validate-data", str(stored), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["hash"] == MINI.content_hash() and printed["samples"] == len(MINI)


def test_a_record_without_the_optional_style_keeps_its_hash(tmp_path):
    """Parquet gives every row every column: a record that had no style must not come back with style=None."""
    meta = json.loads((MINI.root / "meta.json").read_text())
    del meta[0]["style"]
    samples = parse_records(meta, MINI.root / "meta.json", MINI.root)
    folder_hash = load_local(MINI.root).filter(ids=[s.id for s in samples]).content_hash()
    benchmark_to_dataset(samples).to_parquet(str(tmp_path / "b.parquet"))
    bench = load_local(tmp_path)
    assert "style" not in bench.samples[0].raw and bench.samples[1].raw["style"]
    assert bench.content_hash() != folder_hash  # one record changed ...
    from omiti2v.data.benchmark import Benchmark

    assert bench.content_hash() == Benchmark(MINI.root, tuple(samples), "x").content_hash()  # ... and hashes as such


def validation_errors(rows: list[dict], folder) -> list[str]:
    """The problems `load_local` reports for a datasets copy of `rows` saved at `folder` (it must refuse it)."""
    datasets.Dataset.from_list(rows).save_to_disk(str(folder))
    with pytest.raises(DataValidationError) as info:
        load_local(folder)
    return info.value.errors


def test_same_validation_rules_every_record_problem_listed(tmp_path):
    rows = benchmark_to_dataset(list(MINI)).cast_column("image", datasets.Image(decode=False)).to_list()
    rows[0]["main-category"] = "recolour"
    rows[1]["image"] = {"bytes": None, "path": None}
    rows[2]["image-path"] = "../../escape.png"
    rows[3]["resolution"] = [1, 1]
    rows[4]["image"] = {"bytes": b"not an image", "path": "x.png"}
    problems = validation_errors(rows, tmp_path / "bad")
    errors = "\n".join(problems)
    assert f"record 0 (id='{MINI.ids[0]}'): field 'main-category': unknown value 'recolour'" in errors
    assert f"record 1 (id='{MINI.ids[1]}'): field 'image': no image bytes" in errors
    assert f"record 2 (id='{MINI.ids[2]}'): field 'image-path': '../../escape.png' points outside" in errors
    assert not (tmp_path / "escape.png").exists() and not (tmp_path.parent / "escape.png").exists()
    assert len(problems) == 3  # image checks wait until every image could be written
    errors = "\n".join(validation_errors(rows[3:], tmp_path / "images"))
    assert f"id='{MINI.ids[3]}'): field 'resolution': [1, 1] does not match the image size" in errors
    assert f"id='{MINI.ids[4]}'): field 'image-path': unreadable image" in errors


def test_damaged_or_ambiguous_datasets_are_named(tmp_path):
    ds = benchmark_to_dataset(list(MINI))
    datasets.DatasetDict({"a": ds, "b": ds}).save_to_disk(str(tmp_path / "two"))
    with pytest.raises(DataValidationError, match=r"must hold one split, found \['a', 'b'\]"):
        load_local(tmp_path / "two")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "data.parquet").write_bytes(b"PAR1 truncated")
    with pytest.raises(DataValidationError, match=r"broken: the dataset cannot be read"):
        load_local(tmp_path / "broken")
    ds.remove_columns("image").to_parquet(str(tmp_path / "noimage" / "d.parquet"))
    with pytest.raises(DataValidationError, match=r"no 'image' column"):
        load_local(tmp_path / "noimage")
