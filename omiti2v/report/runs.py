"""Reported runs as tables of per-sample values: the input of every cell, CI and paired delta.

A run is read from its summary.json and samples.csv only (both written by the summary stage, and copied into
an `omiti2v export`): no benchmark is loaded, so tables and plots build offline, and every setting (the ASM's
logit multipliers included) is the one recorded, never re-derived from a config. A run summarized before
samples.csv existed keeps its summary.json cells (with their CIs) but gets no paired deltas; a warning names
the missing file. An export made before exports carried samples.csv gets its per-sample values from its splits.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import SetupError
from ..export import is_export
from ..stats import mean_cell
from ..summary import read_sample_table, sample_table
from .paper import CATEGORY_METRICS

log = logging.getLogger(__name__)

# Samples in OmitI2V: a run compares with the paper's numbers only when it covers all of them.
FULL_BENCHMARK_SIZE = 367
COVERAGE_MARKS = {"full": "", "subset": " (subset)", "smoke": " (smoke)"}
# The semantic metrics an extra judge gives a run (summary.json "judges"), in the tables' column order.
JUDGE_METRICS = ("modification", "addition", "deletion", "overall")


@dataclass
class RunResult:
    """One reported run: its summary.json and per-sample table (None for a run reported before samples.csv)."""

    path: Path
    summary: dict
    samples: pd.DataFrame | None

    data = property(lambda self: str(self.summary["run"]["data"]))
    model = property(lambda self: str(self.summary["run"]["model"]))
    asm = property(lambda self: str(self.summary["run"]["asm"]))
    schedule = property(lambda self: str(self.summary["run"]["schedule"]))
    smoke = property(lambda self: bool(self.summary.get("smoke")))
    resolved_asm = property(lambda self: self.summary.get("resolved_asm"))
    replicated = property(lambda self: False)  # a seed-replicate group (omiti2v/report/replicates.py) is True
    guidance = property(lambda self: str(self.summary["run"].get("guidance") or "none"))

    @property
    def method(self) -> dict:
        """summary.json `method`: the run as one point of the methods comparison (docs/methods.md); a run
        summarized before it was recorded counts as its ASM group, without knob or cost."""
        return self.summary.get("method") or {"name": self.asm, "knob": None, "strength": None,
                                              "forwards_per_step": None, "guidance": None}

    @property
    def benchmark(self) -> dict:
        """{"source", "hash", "n_samples"} of the evaluated selection, as summary.json recorded it."""
        return {k: self.summary["benchmark"].get(k) for k in ("source", "hash", "n_samples")}

    @property
    def coverage(self) -> str:
        b = self.benchmark
        return coverage(b["source"], b["n_samples"], self.smoke)

    @property
    def strongest_multiplier(self) -> float | None:
        """The largest recorded logit multiplier over the modulated sites (1.0 when nothing scales the logits),
        the x of a gamma sweep; None when the run recorded no ASM."""
        if self.resolved_asm is None:
            return None
        return max(self.resolved_asm["logit_multipliers"].values(), default=1.0)

    @property
    def multiplier_label(self) -> str:
        """The recorded logit multipliers, e.g. "logits ×1.2 cross_image, ×1.62 cross_text" (Wan with gamma_q=1.2:
        the text branch also gets the preset's gamma_k); "ASM not recorded" for a run made before it was."""
        if self.resolved_asm is None:
            return "ASM not recorded"
        multipliers = self.resolved_asm["logit_multipliers"]
        return "logits " + ", ".join(f"×{factor:g} {site}" for site, factor in multipliers.items()) if multipliers else ""

    def cell(self, metric: str, seed: int) -> dict:
        """{"value", "n", "ci95"} in percent from the per-sample values (summary.json's cell without them)."""
        values = self.values(metric)
        if values is not None:
            return mean_cell(values.to_numpy(), seed)
        cell = (self.summary.get("metrics") or {}).get(metric)
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


def extra_judge_cells(summary: dict) -> dict[str, dict]:
    """judge name -> {"judge_model", "judge_mode", "metrics": {metric: cell}} for every other judge that re-judged
    the run (summary.json "judges", by `omiti2v rejudge`), in one mode: the run's own judge mode where that judge
    ran it, else parity, else the mode it ran."""
    own = (summary.get("models") or {}).get("judge_mode")
    out = {}
    for name, judged in sorted((summary.get("judges") or {}).items()):
        modes = judged.get("metrics") or {}
        if modes:
            mode = own if own in modes else "parity" if "parity" in modes else sorted(modes)[0]
            out[name] = {"judge_model": judged.get("judge_model"), "judge_mode": mode,
                         "metrics": {m: modes[mode][m] for m in JUDGE_METRICS if m in modes[mode]}}
    return out


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


def discover_runs(root: str | Path) -> list[RunResult]:
    """Every reported run under `root`: run directories with a summary.json below it and `omiti2v export`
    datasets (`root` itself may be one). A folder with logs but no summary.json yet is named and left out."""
    root = Path(root)
    if not root.is_dir():
        return []
    found, exports = [], []
    for path in sorted(p for p in [root, *root.rglob("*")] if p.is_dir() and ".hydra-logs" not in p.parts):
        if any(e in path.parents for e in exports):
            continue
        if is_export(path):
            exports.append(path)
            found.append(read_run(path) if (path / "samples.csv").exists() else read_export_run(path))
        elif (path / "summary.json").exists():
            found.append(read_run(path))
        elif (path / "judge.jsonl").exists() or (path / "scores.jsonl").exists():
            log.warning("%s: no summary.json (its summary stage has not run): left out of the tables", path)
    return found


def run_folders(paths: list[str | Path]) -> list[Path]:
    """The folders of `paths` that hold a run. A folder holding only hidden entries (the `.hydra-logs` that
    `make plan` leaves in a run folder it never fills) is skipped with a warning; a missing folder, or no run
    at all, is a SetupError."""
    kept = []
    for path in map(Path, paths):
        if not path.is_dir():
            raise SetupError(f"{path}: no such folder")
        if all(p.name.startswith(".") for p in path.iterdir()):
            log.warning("%s: holds only %s (no run was made there): skipped", path,
                        ", ".join(sorted(p.name for p in path.iterdir())) or "nothing")
            continue
        kept.append(path)
    if not kept:
        raise SetupError(f"none of {', '.join(map(str, paths))} holds a run (only Hydra logs or nothing)")
    return kept


def read_export_run(path: Path) -> RunResult:
    """An export without samples.csv (made before exports carried it): its summary, and its per-sample values
    rebuilt from its splits."""
    from ..export import load_export

    export = load_export(path)
    excluded = frozenset((export.summary.get("failures") or {}).get("excluded") or [])
    samples = sample_table(export.benchmark(), export.judge_records(), export.score_records(),
                           export.summary["models"].get("judge_mode"), excluded)
    return RunResult(path, export.summary, samples)


def read_run(path: Path) -> RunResult:
    """A run folder's summary.json and samples.csv; an old run without samples.csv keeps only its cells."""
    summary_path, samples_path = path / "summary.json", path / "samples.csv"
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    missing = [k for k in ("data", "model", "asm", "schedule") if not (summary.get("run") or {}).get(k)]
    if missing:
        raise ValueError(f"{summary_path}: field 'run' lacks {', '.join(missing)}")
    if not samples_path.exists():
        log.warning("%s: missing (reported before per-sample tables): its cells come from summary.json, without "
                    "paired deltas; rerun its summary stage (stages=[summary]) to write it", samples_path)
        return RunResult(path, summary, None)
    return RunResult(path, summary, read_sample_table(samples_path))


def pick_run(runs: list[RunResult], data: str, model: str, asm: str, schedule: str | None = None,
             guidance: str = "none") -> RunResult | None:
    """The run for a table row: the paper profile, the plain run (no `variant` folder suffix) and the preset's
    gamma preferred, schedule 'paper' preferred when any schedule will do, then a seed-replicate group; runs with
    another guidance method (conf/guidance/) than `guidance` never stand in."""
    hits = [r for r in runs if r.data == data and r.model == model and r.asm == asm and r.guidance == guidance
            and (schedule is None or r.schedule == schedule)]
    if not hits:
        return None
    return min(hits, key=lambda r: (r.summary.get("profile") not in (None, "paper"), bool(r.summary["run"].get("variant")),
                                    (r.resolved_asm or {}).get("preset_gamma") is not True, r.schedule != "paper",
                                    not r.replicated, str(r.path)))


def paired_values(base: RunResult, treated: RunResult, metric: str) -> tuple[np.ndarray, np.ndarray] | None:
    """Per-sample values of both runs on the samples both have, aligned by sample id."""
    a, b = base.values(metric), treated.values(metric)
    if a is None or b is None:
        return None
    joined = pd.concat({"base": a, "treated": b}, axis=1, join="inner").dropna()
    return joined["base"].to_numpy(), joined["treated"].to_numpy()
