"""Seed-replicate groups in the reports: sibling runs `<run>-seed<k>` read as one table row.

A run made by `seeds=[...]` records its seed offset in summary.json (`seeds.replicate`). `group_replicates`
collapses the replicates of one configuration (two or more) into a `ReplicateGroup`, which the tables use like a
run: its cells carry the mean over seeds, the between-seed spread and the crossed two-level bootstrap CI
(omiti2v/replicates.py), and a delta between two groups pairs each sample under the same seed. Per-question
flips between two runs come from their judge.jsonl files. `write_group_summary` writes the group's
replicates.json (schema omiti2v/schemas/replicates.schema.json) into the folder `<run>-replicates`.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from ..replicates import question_flips, replicate_cell, replicate_delta
from ..runs import atomic_write_json, latest_records, read_jsonl
from ..schemas import current_version
from ..stats import N_RESAMPLES
from ..summary import JUDGE_KEY, verdict_correct
from .paper import CATEGORY_METRICS
from .runs import RunResult, pick_run

REPLICATE_SUFFIX = re.compile(r"-seed(\d+)$")
GROUP_SUFFIX = "-replicates"
GROUP_FILE = "replicates.json"
SCHEMA_VERSION = current_version("replicates")


def replicate_offset(run: RunResult) -> int | None:
    """The seed offset k of a replicate run (summary.json seeds.replicate), None for a plain run."""
    value = (run.summary.get("seeds") or {}).get("replicate")
    return None if value is None else int(value)


def group_name(run: RunResult) -> str:
    """The run name the replicate's `-seed<k>` suffix was added to."""
    return REPLICATE_SUFFIX.sub("", str(run.summary["run"]["name"]))


@dataclass
class ReplicateGroup(RunResult):
    """Two or more replicates of one configuration. `samples` holds each sample's mean over the seeds (plots and
    deltas against a plain run use it); cells and deltas between groups use every (seed, sample) value."""

    members: dict[int, RunResult] = field(default_factory=dict)

    @property
    def replicated(self) -> bool:
        return True

    @property
    def seeds(self) -> list[int]:
        return sorted(self.members)

    def matrix(self, metric: str, seeds: list[int] | None = None) -> pd.DataFrame | None:
        """(seeds, samples) values of a metric on the samples every listed seed has; None without per-sample
        values."""
        columns = {k: self.members[k].values(metric) for k in (seeds or self.seeds)}
        if any(v is None for v in columns.values()):
            return None
        return pd.concat(columns, axis=1, join="inner").dropna().T

    def cell(self, metric: str, seed: int) -> dict:
        values = self.matrix(metric)
        if values is None:
            return {"value": None, "n": 0, "ci95": None}
        return replicate_cell(values.to_numpy(), seed)


def _mean_table(members: dict[int, RunResult]) -> pd.DataFrame | None:
    tables = [m.samples for m in members.values()]
    if any(t is None for t in tables):
        return None
    numeric = pd.concat([t.select_dtypes("number") for t in tables]).groupby(level=0).mean()
    labels = tables[0][["main_category", "domain"]]
    return labels.join(numeric, how="inner")


def make_group(name: str, members: dict[int, RunResult]) -> ReplicateGroup:
    first = members[min(members)]
    summary = copy.deepcopy(first.summary)
    summary["run"]["name"] = name
    summary["seeds"] = {"replicates": sorted(members)}
    summary.pop("judges", None)  # per-judge cells are per run; a group does not average them
    path = first.path.with_name(first.path.name.rsplit("-seed", 1)[0] + GROUP_SUFFIX)
    return ReplicateGroup(path, summary, _mean_table(members), members)


def group_replicates(runs: list[RunResult]) -> list[RunResult]:
    """The runs with every configuration's replicates (two or more, same benchmark) replaced by one group."""
    found: dict[tuple, dict[int, RunResult]] = {}
    for r in runs:
        k = replicate_offset(r)
        if k is not None:
            found.setdefault((group_name(r), r.benchmark["hash"]), {})[k] = r
    grouped = {key: members for key, members in found.items() if len(members) >= 2}
    members_of = {id(m) for members in grouped.values() for m in members.values()}
    return ([r for r in runs if id(r) not in members_of]
            + [make_group(name, members) for (name, _), members in grouped.items()])


def common_seeds(base: RunResult, treated: RunResult) -> list[int]:
    if not (isinstance(base, ReplicateGroup) and isinstance(treated, ReplicateGroup)):
        return []
    return sorted(set(base.members) & set(treated.members))


def group_delta(base: RunResult, treated: RunResult, metric: str, seed: int) -> dict | None:
    """treated - base paired by (seed, sample) when both are groups sharing two or more seeds, else None (the
    caller's per-sample paired delta applies). Keys as paired_delta's ("delta", "n", "ci95", "p_value") plus the
    replicate fields."""
    seeds = common_seeds(base, treated)
    if len(seeds) < 2:
        return None
    a, b = base.matrix(metric, seeds), treated.matrix(metric, seeds)
    if a is None or b is None:
        return None
    joined = a.T.join(b.T, how="inner", lsuffix="_base").dropna()
    a_values, b_values = joined.iloc[:, :len(seeds)].to_numpy().T, joined.iloc[:, len(seeds):].to_numpy().T
    out = replicate_delta(a_values, b_values, seed)
    return {"delta": out.pop("value"), **out}


def question_verdicts(run: RunResult) -> pd.Series | None:
    """Per-question correctness (index sample_id, question_id) of a run folder's judge.jsonl in the run's judge
    mode, answered questions only (no error, sample not excluded); None without a judge log (an export)."""
    log = run.path / "judge.jsonl"
    if not log.is_file():
        return None
    mode = (run.summary.get("models") or {}).get("judge_mode")
    excluded = set((run.summary.get("failures") or {}).get("excluded") or [])
    verdicts = {(r["sample_id"], str(r["question_id"])): verdict_correct(r, r.get("expected"))
                for r in latest_records(read_jsonl(log), JUDGE_KEY)
                if (mode is None or r.get("mode") == mode) and r.get("error") is None and r["sample_id"] not in excluded}
    return pd.Series(verdicts, dtype=bool)


def run_flips(base: RunResult, treated: RunResult) -> list[dict]:
    """Flips per seed between two groups (seeds both have), or between two plain runs (seed None)."""
    pairs = ([(k, base.members[k], treated.members[k]) for k in common_seeds(base, treated)]
             if isinstance(base, ReplicateGroup) and isinstance(treated, ReplicateGroup) else
             [] if isinstance(base, ReplicateGroup) or isinstance(treated, ReplicateGroup) else [(None, base, treated)])
    out = []
    for k, b, t in pairs:
        vb, vt = question_verdicts(b), question_verdicts(t)
        if vb is not None and vt is not None:
            out.append({"seed": k, **question_flips(vb, vt)})
    return out


def report_metrics(run: RunResult) -> list[str]:
    """Metrics with per-sample values in a run: the main categories, then every other numeric column."""
    if run.samples is None:
        return []
    others = [c for c in run.samples.select_dtypes("number").columns if c != "overall"]
    return [*CATEGORY_METRICS, "overall", *others]


def group_summary(group: ReplicateGroup, baseline: RunResult | None, seed: int = 0) -> dict:
    """replicates.json: the group's cells, and (with a baseline group of the same model) paired deltas and the
    per-seed question flips."""
    metrics = {m: group.cell(m, seed) for m in report_metrics(group)}
    summary = {
        "schema_version": SCHEMA_VERSION,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "group": group.summary["run"]["name"],
        "run": {k: group.summary["run"].get(k) for k in ("data", "model", "asm", "schedule")},
        "profile": group.summary.get("profile"),
        "smoke": group.smoke,
        "benchmark": group.benchmark,
        "bootstrap": {"method": "crossed two-level (seeds x samples)", "n_resamples": N_RESAMPLES, "seed": seed},
        "replicates": [{"seed": k, "run": m.summary["run"]["name"],
                        "base_seed": (m.summary.get("seeds") or {}).get("base")} for k, m in sorted(group.members.items())],
        "metrics": {m: cell for m, cell in metrics.items() if cell["value"] is not None},
        "baseline": None,
    }
    if isinstance(baseline, ReplicateGroup) and baseline is not group:
        deltas = {m: group_delta(baseline, group, m, seed) for m in metrics}
        summary["baseline"] = {"group": baseline.summary["run"]["name"], "seeds": common_seeds(baseline, group),
                               "deltas": {m: d for m, d in deltas.items() if d is not None},
                               "flips": run_flips(baseline, group)}
    return summary


def group_schema() -> dict:
    return json.loads(resources.files("omiti2v.schemas").joinpath("replicates.schema.json").read_text())


def write_group_summary(run_dirs: list[Path], seed: int = 0) -> Path | None:
    """Group the replicate folders (with their siblings of other settings under the same model folder, for the
    baseline) and write the group's replicates.json; None when fewer than two replicates have a summary."""
    import jsonschema

    from .runs import discover_runs

    model_dir = run_dirs[0].parent
    runs = group_replicates(discover_runs(model_dir))
    mine = {p.resolve() for p in run_dirs}
    group = next((r for r in runs if isinstance(r, ReplicateGroup)
                  and {m.path.resolve() for m in r.members.values()} & mine), None)
    if group is None:
        return None
    same = [r for r in runs if isinstance(r, ReplicateGroup) and r.summary.get("profile") == group.summary.get("profile")
            and r.summary["run"].get("variant") == group.summary["run"].get("variant")]
    baseline = pick_run(same, group.data, group.model, "none")
    summary = group_summary(group, baseline, seed)
    jsonschema.validate(summary, group_schema())
    return atomic_write_json(group.path / GROUP_FILE, summary)


def flips_rows(base: RunResult, treated: RunResult) -> list[dict]:
    """Rows of the flips table for one (baseline, treated) pair."""
    return [{"seed": "" if f["seed"] is None else f["seed"], "n_questions": f["n"],
             "wrong_to_right": f["wrong_to_right"], "right_to_wrong": f["right_to_wrong"],
             "net": f["wrong_to_right"] - f["right_to_wrong"], "mcnemar_p": f["p_value"]}
            for f in run_flips(base, treated)]


def seed_text(row: dict, key: str) -> str:
    """' ±sd (k seeds)' for a replicate cell of a table row, '' otherwise."""
    sd, seeds = row.get(f"{key}_seed_sd"), row.get(f"{key}_seeds")
    if sd is None or seeds is None or (isinstance(sd, float) and np.isnan(sd)):
        return ""
    return f" ±{sd:.2f} ({int(seeds)} seeds)"
