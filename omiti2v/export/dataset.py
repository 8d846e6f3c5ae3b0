"""A run folder as a Hugging Face `datasets.DatasetDict`, and the way back.

Two splits, so a run's evidence can be queried, shared and rebuilt without the run folder:
    questions  one row per latest judge.jsonl record of the run's selection (the record's usual fields as
               columns, `response` being the judge's reply; every other field it carries, such as
               `video_sha256`, in `extra_fields` as JSON), plus the sample's domain and main category
    videos     one row per sample of the selection: its benchmark record (JSON), generation status, seed,
               seconds, memory and timings, the full latest generation record (JSON), and per metric the
               value, details (JSON), backend, comparable flag, error and other fields (`_extra_fields`, JSON)
               of its latest scores.jsonl record
Every field a record carries is exported and read back, so a field a later version adds to its records never
stops a run from being exported.
The run's summary.json and config.yaml travel in every split's `DatasetInfo.description` (a JSON document
with `format` = FORMAT); summary.json and samples.csv are also written beside the splits, byte for byte the
run's, for people, the Hub and the tables (which read an export as a run folder).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
from datasets.table import InMemoryTable
from omegaconf import OmegaConf

from ..data import Benchmark
from ..data.records import DataValidationError, parse_records
from ..errors import SetupError
from ..runs import RunDir, read_jsonl
from ..summary import VISUAL_METRICS, latest_judge_records, latest_records
from .layout import HUB_META_FILE, SPLITS, SUMMARY_FILE, is_export  # noqa: F401  (is_export re-exported)

FORMAT = "omiti2v-run-export"
FORMAT_VERSION = 2  # 2 adds the extra_fields columns; version 1 exports still read (without them)
READABLE_VERSIONS = (1, 2)
EXTRA = "extra_fields"  # a record's fields without a column of their own, as a JSON object (null: none)

JUDGE_FIELDS = {
    "sample_id": "string", "question_id": "string", "category": "string", "question": "string",
    "expected": "string", "answer": "string", "correct": "bool", "response": "string", "p_yes": "float64",
    "mode": "string", "judge_model": "string", "error": "string",
}
QUESTION_FEATURES = datasets.Features({name: datasets.Value(dtype) for name, dtype in {
    **JUDGE_FIELDS, EXTRA: "string", "domain": "string", "main_category": "string"}.items()})
SCORE_FIELDS = ("sample_id", "metric", "value", "details", "backend", "comparable", "error")
# Per metric: column suffix -> (score record field, dtype); details are JSON text.
METRIC_COLUMNS = {"": ("value", "float64"), "_details": ("details", "string"), "_backend": ("backend", "string"),
                  "_comparable": ("comparable", "bool"), "_error": ("error", "string")}
VIDEO_BASE_FEATURES = {
    "sample_id": "string", "main_category": "string", "domain": "string", "benchmark_record": "string",
    "video": "string", "generation_status": "string", "seed": "int64", "generation_seconds": "float64",
    "peak_memory_gb": "float64", "timings": "string", "generation_record": "string",
}


class ExportError(SetupError, ValueError):
    """A run cannot be exported, or a folder is not a complete, intact OmitI2V export (the message names it)."""


def video_features(metrics: list[str], version: int = FORMAT_VERSION) -> datasets.Features:
    cols = dict(VIDEO_BASE_FEATURES)
    for m in metrics:
        cols.update({m + suffix: dtype for suffix, (_, dtype) in METRIC_COLUMNS.items()})
        if version >= 2:
            cols[f"{m}_{EXTRA}"] = "string"
    return datasets.Features({name: datasets.Value(dtype) for name, dtype in cols.items()})


def _json(obj) -> str | None:
    return None if obj is None else json.dumps(obj, ensure_ascii=False, allow_nan=False)


def _extra(record: dict, columns) -> str | None:
    """The record's fields that have no column of their own, as JSON (None when there are none)."""
    extra = {k: v for k, v in record.items() if k not in columns}
    return _json(extra) if extra else None


def _with_extra(fields: dict, extra: str | None) -> dict:
    return {**fields, **json.loads(extra)} if extra else fields


def question_rows(run: RunDir, benchmark: Benchmark) -> list[dict]:
    samples = {s.id: s for s in benchmark}
    records = [r for r in latest_judge_records(run) if r.get("sample_id") in samples]
    return [{**{k: r.get(k) for k in JUDGE_FIELDS}, EXTRA: _extra(r, JUDGE_FIELDS),
             "domain": samples[r["sample_id"]].domain, "main_category": samples[r["sample_id"]].main_category}
            for r in records]


def video_rows(run: RunDir, benchmark: Benchmark) -> tuple[list[dict], list[str]]:
    ids = set(benchmark.ids)
    generation = {r["sample_id"]: r for r in latest_records(read_jsonl(run.generation_log), ("sample_id",))}
    scores = [r for r in latest_records(read_jsonl(run.scores_log), ("sample_id", "metric")) if r.get("sample_id") in ids]
    metrics = list(VISUAL_METRICS) + sorted({r["metric"] for r in scores} - set(VISUAL_METRICS))
    by_key = {(r["sample_id"], r["metric"]): r for r in scores}
    rows = []
    for s in benchmark:
        gen = generation.get(s.id) or {}
        video = gen.get("video") or (f"videos/{s.id}.mp4" if run.video(s.id).exists() else None)
        row = {"sample_id": s.id, "main_category": s.main_category, "domain": s.domain,
               "benchmark_record": _json(s.raw), "video": video, "generation_status": gen.get("status"),
               "seed": gen.get("seed"), "generation_seconds": gen.get("seconds"),
               "peak_memory_gb": gen.get("peak_memory_gb"), "timings": _json(gen.get("timings")),
               "generation_record": _json(gen or None)}
        for m in metrics:
            rec = by_key.get((s.id, m))
            for suffix, (field, _) in METRIC_COLUMNS.items():
                value = rec.get(field) if rec else None
                row[m + suffix] = _json(value) if field == "details" else value
            row[f"{m}_{EXTRA}"] = _extra(rec, SCORE_FIELDS) if rec else None
        rows.append(row)
    return rows, metrics


def build_export(run_path: str | os.PathLike, benchmark: Benchmark, entry: dict | None = None) -> datasets.DatasetDict:
    """The run (with its summary.json) as a DatasetDict; `benchmark` is the run's selection, `entry` its
    leaderboard entry if any."""
    run = RunDir(run_path)
    summary = json.loads(run.summary.read_text(encoding="utf-8"))
    config = OmegaConf.to_container(OmegaConf.load(run.config), resolve=False) if run.config.exists() else {}
    vrows, metrics = video_rows(run, benchmark)
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "summary": summary, "config": config,
            "metrics": metrics, "has_judge_log": run.judge_log.exists(), "entry": entry}
    description = json.dumps(meta, ensure_ascii=False, allow_nan=False)

    def split(rows: list[dict], features: datasets.Features) -> datasets.Dataset:
        info = datasets.DatasetInfo(description=description, features=features)
        return datasets.Dataset.from_list(rows, features=features, info=info)

    return datasets.DatasetDict({"questions": split(question_rows(run, benchmark), QUESTION_FEATURES),
                                 "videos": split(vrows, video_features(metrics))})


def write_export(dataset: datasets.DatasetDict, beside: dict[str, bytes], out: str | os.PathLike,
                 overwrite: bool = False) -> Path:
    """save_to_disk into a temp sibling, then rename: `out` is either the whole export or absent. `beside`: the
    run's files by name (summary.json, samples.csv), kept byte for byte, so a leaderboard entry's summary hash
    still matches."""
    out = Path(out).resolve()
    if out.exists() and not overwrite:
        raise ExportError(f"{out}: already exists (pass --overwrite to replace it)")
    if out.exists() and not is_export(out):
        raise ExportError(f"{out}: exists and is not an OmitI2V export; --overwrite only replaces an export")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        dataset.save_to_disk(str(tmp / "d"))
        for name, data in beside.items():
            (tmp / "d" / name).write_bytes(data)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp / "d", out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


@dataclass(frozen=True)
class ExportedRun:
    """An export read back: its splits and the run's summary and config."""

    path: Path
    questions: datasets.Dataset
    videos: datasets.Dataset
    meta: dict

    summary = property(lambda self: self.meta["summary"])
    config = property(lambda self: self.meta["config"])
    entry = property(lambda self: self.meta.get("entry"))

    def judge_records(self) -> list[dict] | None:
        """The run's latest judge records, field for field; None when the run had no judge.jsonl."""
        if not self.meta["has_judge_log"]:
            return None
        return [_with_extra({k: row[k] for k in JUDGE_FIELDS}, row.get(EXTRA)) for row in self.questions]

    def score_records(self) -> list[dict]:
        """The run's latest scores.jsonl records (selection only), in sample then metric order."""
        out = []
        for row in self.videos:
            for m in self.meta["metrics"]:
                values = {field: row[m + suffix] for suffix, (field, _) in METRIC_COLUMNS.items()}
                if all(v is None for v in values.values()):
                    continue
                values["details"] = json.loads(values["details"]) if values["details"] is not None else None
                out.append(_with_extra({"sample_id": row["sample_id"], "metric": m,
                                        **{k: values[k] for k in SCORE_FIELDS[2:]}}, row.get(f"{m}_{EXTRA}")))
        return out

    def generation_records(self) -> list[dict]:
        return [json.loads(row["generation_record"]) for row in self.videos if row["generation_record"] is not None]

    def benchmark(self) -> Benchmark:
        """The run's selection rebuilt from the benchmark records (validated; images are not part of an export)."""
        records = [json.loads(r) for r in self.videos["benchmark_record"]]
        try:
            samples = parse_records(records, self.path / "videos", self.path, check_images=False)
        except DataValidationError as exc:
            raise ExportError(f"{self.path}: split 'videos': invalid benchmark records:\n{exc}") from exc
        source = self.summary.get("benchmark", {}).get("source", "export")
        return Benchmark(self.path, tuple(samples), source)


def _read_splits(path: Path) -> tuple[dict[str, datasets.Dataset], str]:
    """The splits and the export description of an on-disk export or of a Hub copy (Parquet + HUB_META_FILE)."""
    if (path / "dataset_dict.json").is_file():
        try:
            dd = datasets.load_from_disk(str(path))
        except Exception as exc:  # noqa: BLE001 - datasets raises many types for damaged folders
            raise ExportError(f"{path}: the dataset cannot be read ({type(exc).__name__}: {str(exc).splitlines()[0]})") from exc
        missing = [s for s in SPLITS if s not in dd]
        if missing:
            raise ExportError(f"{path}: split(s) {missing} missing")
        if dd["questions"].info.description != dd["videos"].info.description:
            raise ExportError(f"{path}: split 'questions': dataset info differs from split 'videos'")
        return dict(dd), dd["videos"].info.description
    if (path / HUB_META_FILE).is_file():
        splits = {}
        for split in SPLITS:
            files = sorted((path / "data").glob(f"{split}-*.parquet"))
            if not files:
                raise ExportError(f"{path}: split(s) ['{split}'] missing (no data/{split}-*.parquet)")
            try:
                table = pa.concat_tables([pq.read_table(f) for f in files])
            except (pa.ArrowException, OSError) as exc:
                raise ExportError(f"{path}: split '{split}': the Parquet data cannot be read ({exc})") from exc
            splits[split] = datasets.Dataset(InMemoryTable(table))
        return splits, (path / HUB_META_FILE).read_text(encoding="utf-8")
    raise ExportError(f"{path}: not an OmitI2V export (no dataset_dict.json nor {HUB_META_FILE}; "
                      f"write one with `omiti2v export`)")


def load_export(path: str | os.PathLike) -> ExportedRun:
    """Read and check an export (or its Hub copy); any missing or corrupt part raises one ExportError naming it."""
    path = Path(path)
    dd, description = _read_splits(path)
    try:
        meta = json.loads(description)
    except json.JSONDecodeError as exc:
        raise ExportError(f"{path}: split 'videos': dataset info is not an OmitI2V export description") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("format_version") not in READABLE_VERSIONS:
        raise ExportError(f"{path}: dataset info: not format {FORMAT} version {' or '.join(map(str, READABLE_VERSIONS))}")
    version = meta["format_version"]
    expected = {"questions": set(QUESTION_FEATURES) - ({EXTRA} if version < 2 else set()),
                "videos": set(video_features(meta["metrics"], version))}
    for split, columns in expected.items():
        lacking = sorted(columns - set(dd[split].column_names))
        if lacking:
            raise ExportError(f"{path}: split '{split}': columns {lacking} missing")
    summary_path = path / SUMMARY_FILE
    if not summary_path.is_file():
        raise ExportError(f"{summary_path}: missing")
    try:
        beside = json.loads(summary_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ExportError(f"{summary_path}: not valid JSON") from exc
    if beside != meta["summary"]:
        raise ExportError(f"{summary_path}: differs from the summary in the dataset info")
    return ExportedRun(path, dd["questions"], dd["videos"], meta)
