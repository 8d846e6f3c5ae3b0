"""`omiti2v export`: a run folder as a datasets.DatasetDict that gives back the run's records and tables; damaged
exports fail with one named error; a push that cannot happen says how to push later and writes nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import datasets
import pyarrow.parquet as pq
import pytest
from report_fixtures import make_run, per_sample_accuracy

from omiti2v.cli import main
from omiti2v.data import load_benchmark
from omiti2v.export import ExportError, export_run, load_export
from omiti2v.export.hub import stage_upload
from omiti2v.report import build_tables, discover_runs, load_paper
from omiti2v.runs import RunDir, append_jsonl, latest_records, read_jsonl
from omiti2v.summary import latest_judge_records

REPO = Path(__file__).resolve().parents[1]
BENCH = load_benchmark("mini")


def add_generation_log(path: Path) -> list[dict]:
    """A failed then a successful attempt for the first sample, one success for the others; returns the latest."""
    first = BENCH.ids[0]
    failed = {"sample_id": first, "status": "failed", "error": "OutOfMemoryError: x", "error_kind": "oom", "seed": 7,
              "video": None, "seconds": 1.5, "peak_memory_gb": None, "shard": "0/1", "host": "h"}
    ok = [{"sample_id": sid, "status": "ok", "error": None, "seed": 100 + i, "base_seed": 42,
           "video": f"videos/{sid}.mp4", "seconds": 2.0 + i, "peak_memory_gb": 3.25,
           "settings": {"height": 32, "sampling": {"num_inference_steps": 2}}, "timings": {"pipeline": 1.0 + i}}
          for i, sid in enumerate(BENCH.ids)]
    append_jsonl(RunDir(path).generation_log, [failed, *ok])
    return ok


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two runs of the mini benchmark (the second logged in reverse order) and their exports, mirrored."""
    root = tmp_path_factory.mktemp("runs")
    paths = {"none": make_run(root, "wan2.1", "none", "paper", seed=1),
             "scalar": make_run(root, "wan2.1", "scalar", "paper", seed=2, reverse=True)}
    generation = add_generation_log(paths["none"][0])
    exports = tmp_path_factory.mktemp("exports")
    for path, _ in paths.values():
        export_run(path, exports / path.relative_to(root))
    return root, exports, paths, generation


def test_export_gives_back_the_runs_records(runs):
    root, exports, paths, generation = runs
    path, truth = paths["none"]
    out = exports / path.relative_to(root)
    dd = datasets.load_from_disk(str(out))
    assert set(dd) == {"questions", "videos"}
    run = RunDir(path)
    exported = load_export(out)
    assert exported.judge_records() == latest_judge_records(run)  # every field of every latest record, in order
    assert exported.score_records() == latest_records(read_jsonl(run.scores_log), ("sample_id", "metric"))
    assert exported.generation_records() == generation
    assert exported.summary == json.loads(run.summary.read_text())
    assert (out / "summary.json").read_bytes() == run.summary.read_bytes()
    assert (out / "samples.csv").read_bytes() == run.samples.read_bytes()  # the per-sample table travels too
    questions = dd["questions"].to_pandas()
    parity = questions[questions["mode"] == "parity"]
    assert {(r.sample_id, r.question_id): bool(r.correct) for r in parity.itertuples()} == truth["correct"]
    category = {s.id: (s.main_category, s.domain) for s in BENCH}
    assert all(category[r.sample_id] == (r.main_category, r.domain) for r in questions.itertuples())
    videos = dd["videos"].to_pandas().set_index("sample_id")
    assert list(videos.index) == BENCH.ids
    assert videos["dynamic_degree"].to_dict() == truth["dynamic_degree"]
    assert videos["aesthetic_quality"].to_dict() == truth["aesthetic_quality"]
    assert videos["imaging_quality"].isna().all()  # never scored: empty, not zero
    assert list(videos["seed"]) == [100 + i for i in range(len(BENCH))]
    assert json.loads(videos.loc[BENCH.ids[1], "timings"]) == {"pipeline": 2.0}
    assert exported.benchmark().ids == BENCH.ids
    assert [s.questions for s in exported.benchmark()] == [s.questions for s in BENCH]


def test_tables_from_exports_equal_tables_from_runs(runs):
    root, exports, paths, _ = runs
    from_runs = build_tables(discover_runs(root), "mini", load_paper(), seed=0)
    from_exports = build_tables(discover_runs(exports), "mini", load_paper(), seed=0)
    # read as exports: summary.json and samples.csv, as a run folder is read
    assert [r.samples is not None for r in discover_runs(exports)] == [True, True]
    single = exports / paths["none"][0].relative_to(root)
    assert [r.path for r in discover_runs(single)] == [single]  # `tables --runs EXPORT` works too
    assert from_runs.keys() == from_exports.keys()
    for name, table in from_runs.items():
        other = from_exports[name]
        assert list(other["run"]) == [str(exports / Path(p).relative_to(root)) if p else "" for p in table["run"]]
        pd_equal = table.drop(columns="run").equals(other.drop(columns="run"))
        assert pd_equal, name
    base = from_exports["baselines"]
    base = base[(base["model"] == "wan2.1") & (base["label"] == "baseline")]
    accuracy = per_sample_accuracy(paths["none"][1])
    assert base["overall"].item() == pytest.approx(100 * sum(accuracy.values()) / len(accuracy))
    assert base["overall_n"].item() == len(BENCH)  # per-sample values, not the summary's cell


def test_an_export_without_samples_csv_gives_the_same_tables_from_its_splits(runs, tmp_path):
    """An export made before exports carried samples.csv: its per-sample values come from its splits."""
    root, exports, paths, _ = runs
    old = tmp_path / "old"
    shutil.copytree(exports, old)
    for path in old.rglob("samples.csv"):
        path.unlink()
    read = discover_runs(old)
    assert len(read) == 2 and all(r.samples is not None for r in read)
    rebuilt = build_tables(read, "mini", load_paper(), seed=0)
    for name, table in build_tables(discover_runs(exports), "mini", load_paper(), seed=0).items():
        assert table.drop(columns="run").equals(rebuilt[name].drop(columns="run")), name


def _copy(runs, tmp_path) -> Path:
    root, exports, paths, _ = runs
    out = tmp_path / "export"
    shutil.copytree(exports / paths["none"][0].relative_to(root), out)
    return out


def _drop_column(out: Path) -> None:
    ds = datasets.load_from_disk(str(out / "videos")).remove_columns("dynamic_degree")
    ds.save_to_disk(str(out.parent / "tmp"))
    shutil.rmtree(out / "videos")
    shutil.move(out.parent / "tmp", out / "videos")


def _set_description(out: Path, text: str) -> None:
    for split in ("questions", "videos"):
        info = json.loads((out / split / "dataset_info.json").read_text())
        (out / split / "dataset_info.json").write_text(json.dumps({**info, "description": text}))


DAMAGE = {
    "missing split": (lambda out: shutil.rmtree(out / "videos"), r"videos"),
    "missing summary": (lambda out: (out / "summary.json").unlink(), r"summary\.json: missing"),
    "edited summary": (lambda out: (out / "summary.json").write_text('{"metrics": {}}'), r"summary\.json: differs"),
    "truncated data": (lambda out: next((out / "questions").glob("*.arrow")).write_bytes(b"\0" * 8), r"cannot be read"),
    "foreign dataset": (lambda out: _set_description(out, "some other dataset"), r"not an OmitI2V export description"),
    "missing column": (_drop_column, r"split 'videos': columns \['dynamic_degree'\] missing"),
    "not a dataset": (lambda out: (out / "dataset_dict.json").unlink(), r"no dataset_dict\.json"),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_damaged_export_is_one_named_error(runs, tmp_path, damage):
    out = _copy(runs, tmp_path)
    load_export(out)  # intact before the damage
    apply, message = DAMAGE[damage]
    apply(out)
    with pytest.raises(ExportError, match=message) as info:
        load_export(out)
    assert str(out) in str(info.value)


def test_export_refuses_unfinished_runs_and_existing_folders(runs, tmp_path, capsys):
    root, exports, paths, _ = runs
    unfinished = tmp_path / "unfinished"
    shutil.copytree(paths["none"][0], unfinished)
    (unfinished / "summary.json").unlink()
    assert main(["export", str(unfinished), "--out", str(tmp_path / "x")]) == 2
    assert "no summary.json" in capsys.readouterr().err and not (tmp_path / "x").exists()
    existing = exports / paths["none"][0].relative_to(root)
    assert main(["export", str(paths["none"][0]), "--out", str(existing)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert load_export(existing).summary  # untouched
    assert main(["export", str(paths["none"][0]), "--out", str(root), "--overwrite"]) == 2
    assert "is not an OmitI2V export" in capsys.readouterr().err
    assert (paths["none"][0] / "judge.jsonl").is_file()  # the runs folder was not replaced
    replaced = tmp_path / "again"
    shutil.copytree(existing, replaced)
    assert main(["export", str(paths["scalar"][0]), "--out", str(replaced), "--overwrite"]) == 0
    assert load_export(replaced).summary["run"]["asm"] == "scalar"


def test_push_offline_names_hf_token_and_writes_nothing(runs, tmp_path, capsys):
    run = runs[2]["none"][0]
    out = tmp_path / "export"
    assert os.environ["HF_HUB_OFFLINE"] == "1"  # set by conftest
    assert main(["export", str(run), "--out", str(out), "--push-to-hub", "someone/omiti2v-run"]) == 2
    err = capsys.readouterr().err
    assert "HF_TOKEN" in err and "HF_HUB_OFFLINE is set" in err
    assert f"omiti2v export {run} --out {out} --push-to-hub someone/omiti2v-run" in err
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_push_without_token_or_network_fails_clearly(runs, tmp_path):
    """Real failures, no mocks: no token at all; then a token but a Hub endpoint that refuses connections."""
    run = runs[2]["none"][0]
    env = {**os.environ, "HF_HUB_OFFLINE": "0", "HF_HOME": str(tmp_path / "hf"), "PYTHONPATH": str(REPO)}
    env.pop("HF_TOKEN", None)
    command = [sys.executable, "-m", "omiti2v.cli", "export", str(run), "--push-to-hub", "someone/x"]
    no_token = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert no_token.returncode == 2 and "no token (HF_TOKEN is not set" in no_token.stderr
    env.update(HF_TOKEN="hf_" + "x" * 34, HF_ENDPOINT="http://127.0.0.1:9", HF_HUB_ETAG_TIMEOUT="2")
    out = tmp_path / "kept"
    refused = subprocess.run([*command, "--out", str(out)], env=env, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2, refused.stderr
    assert "Nothing was uploaded" in refused.stderr and "--overwrite" in refused.stderr
    assert load_export(out).summary  # the local export is complete, ready to push later


def test_hub_copy_holds_the_same_rows_as_parquet(runs, tmp_path):
    root, exports, paths, _ = runs
    out = exports / paths["scalar"][0].relative_to(root)
    stage_upload(out, tmp_path)
    exported = load_export(out)
    for split in ("questions", "videos"):
        rows = pq.read_table(tmp_path / "data" / f"{split}-00000-of-00001.parquet").to_pylist()
        assert rows == getattr(exported, split).to_list()
    assert (tmp_path / "summary.json").read_bytes() == (out / "summary.json").read_bytes()
    assert (tmp_path / "samples.csv").read_bytes() == (out / "samples.csv").read_bytes()
    assert json.loads((tmp_path / "omiti2v_export.json").read_text())["summary"] == exported.summary
    card = (tmp_path / "README.md").read_text()
    assert "split: questions" in card and "path: data/videos-*.parquet" in card
    downloaded = load_export(tmp_path)  # a Hub copy reads back like the export it came from
    assert downloaded.judge_records() == exported.judge_records()
    assert downloaded.score_records() == exported.score_records()
    assert downloaded.benchmark().ids == exported.benchmark().ids
    assert discover_runs(tmp_path)[0].samples is not None  # read as an export: its samples.csv
    (tmp_path / "data" / "videos-00000-of-00001.parquet").unlink()
    with pytest.raises(ExportError, match=r"split\(s\) \['videos'\] missing"):
        load_export(tmp_path)


@pytest.mark.slow
def test_a_fresh_smoke_run_exports_every_field_and_gives_back_its_tables(tmp_path):
    """What today's stages write (a field added to a record included) travels through `omiti2v export` and back:
    the records field for field, and the tables read from the export, with and without its samples.csv, equal
    the tables read from the run."""
    results = tmp_path / "results"
    proc = subprocess.run([sys.executable, str(REPO / "runners" / "eval.py"), "--config-name", "smoke",
                           f"results_root={results}", "data.categories=[deletion]"],
                          capture_output=True, text=True, cwd=REPO, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = RunDir(results / "runs" / "mini" / "wan2.1-tiny" / "scalar-paper")
    out = tmp_path / "exports" / "smoke"
    assert main(["export", str(run.path), "--out", str(out)]) == 0
    exported = load_export(out)
    assert exported.judge_records() == latest_judge_records(run)
    by_key = sorted(latest_records(read_jsonl(run.scores_log), ("sample_id", "metric")), key=lambda r: (r["sample_id"], r["metric"]))
    assert sorted(exported.score_records(), key=lambda r: (r["sample_id"], r["metric"])) == by_key
    assert exported.generation_records() == latest_records(read_jsonl(run.generation_log), ("sample_id",))
    assert all(r["video_sha256"].startswith("sha256:") for r in exported.judge_records() + exported.score_records())
    from_run = build_tables(discover_runs(run.path), "mini", load_paper(), seed=0)
    without_samples = tmp_path / "exports" / "from-splits"
    shutil.copytree(out, without_samples)
    (without_samples / "samples.csv").unlink()
    for folder in (out, without_samples):
        from_export = build_tables(discover_runs(folder), "mini", load_paper(), seed=0)
        for name, table in from_run.items():
            assert table.drop(columns="run").equals(from_export[name].drop(columns="run")), (folder.name, name)
    treated = from_run["alignvid"]
    assert treated.loc[treated["model"] == "wan2.1-tiny", "overall_n"].max() == 4  # the run is in the tables
