"""Run directories as tables of per-sample values: the input of every cell, CI and paired delta."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from ..data import DatasetUnavailableError, DataValidationError
from ..export import is_export
from ..runs import RunDir, read_jsonl
from ..stats import mean_cell
from ..summary import VISUAL_METRICS, judge_frame, latest_judge_records, latest_records
from .paper import CATEGORY_METRICS

if TYPE_CHECKING:
    from ..export import ExportedRun

log = logging.getLogger(__name__)

# Samples in OmitI2V: a run compares with the paper's numbers only when it covers all of them.
FULL_BENCHMARK_SIZE = 367
COVERAGE_MARKS = {"full": "", "subset": " (subset)", "smoke": " (smoke)"}

# Default gamma of the model presets (REFERENCE §2); used where a config leaves gamma_q/gamma_k null.
PRESET_GAMMA = 1.35
SAMPLE_COLUMNS = ("main_category", "overall", *VISUAL_METRICS)


@dataclass
class RunResult:
    """One run directory: its identity (from summary.json or config.yaml) and its per-sample values."""

    path: Path
    data: str
    model: str
    asm: str
    schedule: str
    config: dict = field(default_factory=dict)
    summary: dict | None = None
    export: ExportedRun | None = None  # set when the run was read from an `omiti2v export` dataset

    @property
    def key(self) -> tuple[str, str, str, str]:
        return self.data, self.model, self.asm, self.schedule

    @property
    def smoke(self) -> bool:
        if self.summary is not None:
            return bool(self.summary.get("smoke"))
        return bool(self.config.get("smoke", False))

    @cached_property
    def benchmark(self) -> dict:
        """{"source", "hash", "n_samples"} of the evaluated selection (summary.json, else recomputed; None if unknown)."""
        recorded = (self.summary or {}).get("benchmark")
        if recorded:
            return {k: recorded.get(k) for k in ("source", "hash", "n_samples")}
        bench = load_run_benchmark(self)
        if bench is None:
            return {"source": (self.config.get("data") or {}).get("source"), "hash": None, "n_samples": None}
        return {"source": bench.source, "hash": bench.content_hash(), "n_samples": len(bench)}

    @property
    def coverage(self) -> str:
        b = self.benchmark
        return coverage(b["source"], b["n_samples"], self.smoke)

    @property
    def gamma(self) -> float | None:
        """The logit multiplier gamma_q * gamma_k; the preset's 1.35 when unset; 1.0 without ASM."""
        asm = self.config.get("asm") or {}
        if (asm.get("strategy") or self.asm) == "none":
            return 1.0
        gq, gk = asm.get("gamma_q"), asm.get("gamma_k")
        if gq is None and gk is None:
            return PRESET_GAMMA
        return float(gq if gq is not None else 1.0) * float(gk if gk is not None else 1.0)

    @property
    def gamma_is_default(self) -> bool:
        asm = self.config.get("asm") or {}
        return asm.get("gamma_q") is None and asm.get("gamma_k") is None

    @property
    def judge_mode(self) -> str | None:
        if self.summary is not None:
            return (self.summary.get("models") or {}).get("judge_mode")
        mode = (self.config.get("judge") or {}).get("mode")
        return "parity" if mode in ("parity", "both") else mode

    @property
    def excluded(self) -> frozenset[str]:
        """Samples the summary left out of every VQA mean (missing video under judge.missing_video=exclude)."""
        return frozenset(((self.summary or {}).get("failures") or {}).get("excluded") or [])

    @cached_property
    def samples(self) -> pd.DataFrame | None:
        """Per-sample values in 0..1 indexed by sample id (NaN where a metric has no value), or None when
        the benchmark cannot be loaded (then only the summary's cells are available)."""
        if self.export is not None:
            return frame_from_records(self.export.benchmark(), self.export.judge_records(),
                                      self.export.score_records(), self.judge_mode, self.excluded)
        benchmark = load_run_benchmark(self)
        if benchmark is None:
            return None
        run = RunDir(self.path)
        judged = latest_judge_records(run) if run.judge_log.exists() else None
        return frame_from_records(benchmark, judged, read_jsonl(run.scores_log), self.judge_mode, self.excluded)

    def cell(self, metric: str, seed: int) -> dict:
        """{"value", "n", "ci95"} in percent, computed from the per-sample logs (summary.json as fallback)."""
        values = self.values(metric)
        if values is not None:
            return mean_cell(values.to_numpy(), seed)
        cell = ((self.summary or {}).get("metrics") or {}).get(metric)
        return dict(cell) if cell else {"value": None, "n": 0, "ci95": None}

    def values(self, metric: str) -> pd.Series | None:
        """Per-sample values of a table metric (a main category selects that category's samples)."""
        frame = self.samples
        if frame is None:
            return None
        if metric in CATEGORY_METRICS:
            series = frame.loc[frame["main_category"] == metric, "overall"]
        else:
            series = frame[metric]
        return series.dropna().astype(float)


def coverage(source: str | None, n_samples: int | None, smoke: bool) -> str:
    """'smoke' (tiny models), 'full' (all of OmitI2V, from the hub or a local copy) or 'subset' (anything less)."""
    if smoke:
        return "smoke"
    if source and source != "mini" and n_samples == FULL_BENCHMARK_SIZE:
        return "full"
    return "subset"


def group_by_benchmark(runs: list[RunResult]) -> dict[str, list[RunResult]]:
    """label -> runs on one benchmark (source + content hash). The label is the data name, suffixed with the
    hash's first 12 hex digits when runs of one data name were made on different selections."""
    groups: dict[tuple, list[RunResult]] = {}
    for r in runs:
        groups.setdefault((r.data, r.benchmark["source"], r.benchmark["hash"]), []).append(r)
    names = [data for data, _, _ in groups]
    return {data if names.count(data) == 1 else f"{data}-{(digest or 'sha256:unknown').split(':')[-1][:12]}": members
            for (data, _, digest), members in groups.items()}


def frame_from_records(benchmark, judge_records: list[dict] | None, score_records, judge_mode: str | None,
                       excluded: frozenset[str] = frozenset()) -> pd.DataFrame:
    """One row per benchmark sample: main category, VQA accuracy (judge_frame's rules) and visual metrics.
    `judge_records`: the latest judge records, None when the run has no judge log (accuracy stays NaN);
    `excluded`: samples the run's summary left out of the VQA means (missing video), NaN accuracy here too."""
    frame = pd.DataFrame(index=pd.Index(benchmark.ids, name="sample_id"), columns=list(SAMPLE_COLUMNS), dtype=float)
    frame["main_category"] = [s.main_category for s in benchmark]
    if judge_records is not None:
        judged = judge_frame(None, benchmark, judge_mode, records=judge_records)
        judged = judged.loc[~judged["sample_id"].isin(excluded)]
        frame["overall"] = judged.groupby("sample_id", sort=False)["correct"].mean().reindex(frame.index).astype(float)
    ids = set(benchmark.ids)
    for rec in latest_records(score_records, ("sample_id", "metric")):
        metric, sid = rec.get("metric"), rec.get("sample_id")
        if metric in VISUAL_METRICS and sid in ids and rec.get("error") is None and rec.get("value") is not None:
            frame.loc[sid, metric] = float(rec["value"])
    return frame


_BENCHMARKS: dict[str, object] = {}


def load_run_benchmark(run: RunResult):
    """The benchmark selection a run was made on (its config's data group), cached; None if unavailable."""
    data_cfg = run.config.get("data")
    if not data_cfg:
        log.warning("%s: config.yaml has no data group; using summary.json cells without per-sample statistics", run.path)
        return None
    key = json.dumps(data_cfg, sort_keys=True, default=str)
    if key not in _BENCHMARKS:
        from ..pipeline import benchmark_from_config

        try:
            _BENCHMARKS[key] = benchmark_from_config(OmegaConf.create(data_cfg))
        except (DatasetUnavailableError, DataValidationError, FileNotFoundError, ValueError) as exc:
            log.warning("%s: benchmark unavailable (%s); using summary.json cells", run.path, str(exc).splitlines()[0])
            _BENCHMARKS[key] = None
    return _BENCHMARKS[key]


def discover_runs(root: str | Path) -> list[RunResult]:
    """Every run under `root`: run directories (summary.json, or config.yaml plus a judge/score log) below it and
    `omiti2v export` datasets (`root` itself may be one)."""
    root = Path(root)
    if not root.is_dir():
        return []
    found, exports = [], []
    for path in sorted(p for p in [root, *root.rglob("*")] if p.is_dir() and ".hydra-logs" not in p.parts):
        if any(e in path.parents for e in exports):
            continue
        if is_export(path):
            exports.append(path)
            found.append(read_export_run(path))
            continue
        if path == root:
            continue
        has_logs = (path / "judge.jsonl").exists() or (path / "scores.jsonl").exists()
        if not (path / "summary.json").exists() and not ((path / "config.yaml").exists() and has_logs):
            continue
        found.append(read_run(path))
    return found


def read_export_run(path: Path) -> RunResult:
    """A run read from an `omiti2v export` dataset: identity from its summary, values from its splits."""
    from ..export import load_export

    export = load_export(path)
    ident = export.summary["run"]
    return RunResult(path, *(str(ident[k]) for k in ("data", "model", "asm", "schedule")), export.config,
                     export.summary, export)


def read_run(path: Path) -> RunResult:
    config = OmegaConf.to_container(OmegaConf.load(path / "config.yaml"), resolve=False) if (path / "config.yaml").exists() else {}
    summary = json.loads((path / "summary.json").read_text()) if (path / "summary.json").exists() else None
    ident = (summary or {}).get("run") or {}

    def name(key: str) -> str:
        value = ident.get(key) or (config.get(key) or {}).get("name")
        if not value:
            raise ValueError(f"{path}: cannot tell the run's {key} (no summary.json run.{key} nor config.yaml {key}.name)")
        return str(value)

    return RunResult(path, name("data"), name("model"), name("asm"), name("schedule"), config, summary)


def pick_run(runs: list[RunResult], data: str, model: str, asm: str, schedule: str | None = None) -> RunResult | None:
    """The run for a table row: the paper profile, the plain run (no `variant` folder suffix) and default gamma
    preferred, schedule 'paper' preferred when any schedule will do."""
    hits = [r for r in runs if r.data == data and r.model == model and r.asm == asm and (schedule is None or r.schedule == schedule)]
    if not hits:
        return None
    return min(hits, key=lambda r: (r.config.get("profile", "paper") != "paper", bool(r.config.get("variant")),
                                    not r.gamma_is_default, r.schedule != "paper", str(r.path)))


def paired_values(base: RunResult, treated: RunResult, metric: str) -> tuple[np.ndarray, np.ndarray] | None:
    """Per-sample values of both runs on the samples both have, aligned by sample id."""
    a, b = base.values(metric), treated.values(metric)
    if a is None or b is None:
        return None
    joined = pd.concat({"base": a, "treated": b}, axis=1, join="inner").dropna()
    return joined["base"].to_numpy(), joined["treated"].to_numpy()
