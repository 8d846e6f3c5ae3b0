"""Two tables beside the paper's: input preservation per main category, and per-question flips.

negligence: for every run with the input-preservation scorers (copy index, I2V subject, I2V background), each
metric's mean per main category and over all samples (percent, 95 % bootstrap CI over samples), and its Spearman
correlation with the judge's per-sample accuracy (docs/scorers-negligence.md). A deletion or addition sample
with a high copy index kept its input: expect a negative correlation where the index catches negligence.

flips: for every run against its model's baseline (asm none), the questions that went wrong -> right and
right -> wrong, with the exact McNemar p; per seed for replicate groups (docs/replicates.md). Read from the run
folders' judge.jsonl, so exports (without one) have no rows.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
from scipy import stats

from ..data import MAIN_CATEGORIES
from ..runs import atomic_write_text
from ..stats import mean_cell
from .replicates import flips_rows, group_replicates
from .runs import RunResult, pick_run
from .tables import markdown_table

NEGLIGENCE_METRICS = {"copy_index": "Copy index", "i2v_subject": "I2V subject", "i2v_background": "I2V background"}
TITLES = {"negligence": "Input preservation per main category, and its correlation with the judge's accuracy",
          "flips": "Per-question flips against the baseline (exact McNemar)"}


def _run_label(r: RunResult) -> str:
    return f"{r.asm}-{r.schedule}{r.summary['run'].get('variant') or ''}"


def negligence_rows(run: RunResult, seed: int) -> list[dict]:
    frame = run.samples
    rows = []
    for metric in (m for m in NEGLIGENCE_METRICS if frame is not None and m in frame and frame[m].notna().any()):
        row = {"model": run.model, "run": _run_label(run), "coverage": run.coverage, "metric": metric}
        for category in (*MAIN_CATEGORIES, "all"):
            part = frame if category == "all" else frame.loc[frame["main_category"] == category]
            cell = mean_cell(part[metric].dropna().to_numpy(), seed)
            ci = cell["ci95"] or [None, None]
            row.update({category: cell["value"], f"{category}_ci_low": ci[0], f"{category}_ci_high": ci[1],
                        f"{category}_n": cell["n"]})
        both = frame[[metric, "overall"]].dropna()
        varied = len(both) >= 3 and both[metric].nunique() > 1 and both["overall"].nunique() > 1
        rho = stats.spearmanr(both[metric], both["overall"]) if varied else None
        row.update({"spearman_accuracy": None if rho is None or math.isnan(rho.statistic) else float(rho.statistic),
                    "spearman_p": None if rho is None or math.isnan(rho.pvalue) else float(rho.pvalue),
                    "spearman_n": len(both)})
        rows.append(row)
    return rows


def flips_table(runs: list[RunResult], data: str) -> pd.DataFrame:
    rows = []
    for model in sorted({r.model for r in runs if r.data == data}):
        baseline = pick_run(runs, data, model, "none")
        for treated in (r for r in runs if r.data == data and r.model == model and r.asm != "none"):
            if baseline is not None:
                rows += [{"model": model, "run": _run_label(treated), "baseline": _run_label(baseline), **f}
                         for f in flips_rows(baseline, treated)]
    return pd.DataFrame(rows)


def build_supplementary(runs: list[RunResult], data: str, seed: int = 0) -> dict[str, pd.DataFrame]:
    runs = group_replicates(runs)
    mine = [r for r in runs if r.data == data]
    return {"negligence": pd.DataFrame([row for r in mine for row in negligence_rows(r, seed)]),
            "flips": flips_table(runs, data)}


def _fmt(value, digits: int = 2) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _cell(row: dict, category: str) -> str:
    if not _fmt(row[category]):
        return ""
    low, high = _fmt(row[f"{category}_ci_low"]), _fmt(row[f"{category}_ci_high"])
    return f"{_fmt(row[category])}{f' [{low}, {high}]' if low else ''} n={row[f'{category}_n']}"


def _negligence_view(table: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame({"Model": table["model"], "Run": table["run"] + table["coverage"].map(
        lambda c: "" if c == "full" else f" ({c})"), "Metric": table["metric"].map(NEGLIGENCE_METRICS)})
    for category in (*MAIN_CATEGORIES, "all"):
        out[category.capitalize()] = [_cell(r, category) for r in table.to_dict("records")]
    out["Spearman ρ with accuracy"] = [f"{_fmt(r['spearman_accuracy'], 3)} (p={_fmt(r['spearman_p'], 3)}, n={r['spearman_n']})"
                                       if _fmt(r["spearman_accuracy"]) else "" for r in table.to_dict("records")]
    return out


def to_markdown(name: str, table: pd.DataFrame) -> str:
    lines = [f"## {TITLES[name]}", ""]
    view = _negligence_view(table) if name == "negligence" and not table.empty else table
    if view.empty:
        return "\n".join([*lines, "_no rows_", ""])
    lines += markdown_table(view, lambda v: _fmt(v, 4) if isinstance(v, float) else str(v))
    note = ("Metrics in percent (x100 of 0..1) [95 % bootstrap CI over samples]; ρ: Spearman rank correlation of "
            "the per-sample metric with the per-sample VQA accuracy." if name == "negligence" else
            "Questions answered in both runs; seed: the replicate pair (empty for two plain runs); mcnemar_p: exact "
            "two-sided binomial test on the flipped questions.")
    return "\n".join([*lines, "", note, ""])


def write_supplementary(tables: dict[str, pd.DataFrame], out_dir: str | Path) -> list[Path]:
    """<name>.csv and <name>.md per table."""
    out_dir = Path(out_dir)
    written = []
    for name, table in tables.items():
        written.append(atomic_write_text(out_dir / f"{name}.csv", table.to_csv(index=False)))
        written.append(atomic_write_text(out_dir / f"{name}.md", to_markdown(name, table)))
    return written
