"""The methods comparison (`make reproduce TABLE=methods`, docs/methods.md): every method at every strength, the
same at matched strength, and the Pareto plot, from run directories.

A run is one point of one method's sweep, as its summary.json `method` records it (omiti2v.guidance.record):
the untouched model ("none") is the baseline, every other run of the same model, data and schedule `paper` is a
point of its method (scalar ASM at its gamma, a guidance method at its strength, a pilot blur). Cells are means
in percent with a 95 % bootstrap CI over samples; the Δ columns are paired differences from the baseline
(paired bootstrap CI, sign-flip p). Cost: the run's transformer forwards per step and, from the planner's
published figures (omiti2v/generate/published_costs.yaml), seconds per step at real size.

Matched strength: each method at the strongest setting whose aesthetic-quality drop from the baseline (the
paired mean difference, in points) is at most `MATCHED_AQ_DROP`; a method with no setting inside the bound gets
an empty row that says so. Methods without a knob (the pilots) count as their one setting.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from ..costs import seconds_per_step
from ..runs import atomic_write_text
from ..stats import paired_delta
from .paper import METRICS, model_label, model_order
from .plots import _save, coverage_mark, plt
from .runs import COVERAGE_MARKS, RunResult, paired_values
from .tables import markdown_table

MATCHED_AQ_DROP = 1.0  # points of aesthetic quality a method may lose against the baseline at matched strength
DELTA_METRICS = ("overall", "dynamic_degree", "aesthetic_quality")
TITLES = {
    "methods": "Training-free methods, every strength (schedule paper), with paired deltas from the baseline",
    "methods_matched": f"Training-free methods at matched strength: the strongest setting losing at most "
                       f"{MATCHED_AQ_DROP:g} aesthetic-quality point",
}


def _num(value) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def method_points(runs: list[RunResult], data: str, model: str) -> list[RunResult]:
    """The model's runs on schedule paper, one per (method, strength): the paper profile and the path order
    decide between duplicates; the baseline first, then by method name and strength."""
    chosen: dict[tuple, RunResult] = {}
    mine = sorted((r for r in runs if r.data == data and r.model == model and r.schedule == "paper"),
                  key=lambda r: (r.summary.get("profile") not in (None, "paper"), str(r.path)))
    for run in mine:
        chosen.setdefault((run.method["name"], _num(run.method["strength"])), run)
    return sorted(chosen.values(), key=lambda r: (r.method["name"] != "none", r.method["name"],
                                                  _num(r.method["strength"]) or 0.0))


def point_row(run: RunResult, base: RunResult | None, seed: int) -> dict:
    method = run.method
    forwards = _num(method.get("forwards_per_step"))
    strategy = (run.resolved_asm or {}).get("strategy", "none")
    seconds, note = (None, "") if forwards is None else seconds_per_step(run.model, forwards, strategy, run.guidance)
    row = {"method": method["name"], "knob": method.get("knob") or "", "strength": _num(method.get("strength")),
           "run": str(run.path), "coverage": run.coverage, "n_samples": run.benchmark["n_samples"],
           "forwards_per_step": forwards, "seconds_per_step": None if seconds is None else round(seconds, 3),
           "cost_note": note, "note": ""}
    for m in METRICS:
        cell = run.cell(m, seed)
        low, high = cell["ci95"] or (None, None)
        row.update({m: cell["value"], f"{m}_ci_low": low, f"{m}_ci_high": high, f"{m}_n": cell["n"]})
    for m in DELTA_METRICS:
        pair = paired_values(base, run, m) if base is not None and base is not run else None
        d = paired_delta(*pair, seed=seed) if pair is not None else {"delta": None, "ci95": None, "p_value": None}
        low, high = d["ci95"] or (None, None)
        row.update({f"d_{m}": d["delta"], f"d_{m}_ci_low": low, f"d_{m}_ci_high": high, f"d_{m}_p": d["p_value"]})
    return row


def build_methods_table(runs: list[RunResult], data: str, paper: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Every method at every strength, per model with method runs on this data."""
    rows = []
    models = model_order(paper, {r.model for r in runs if r.data == data and r.schedule == "paper"})
    for model in models:
        points = method_points(runs, data, model)
        base = next((r for r in points if r.method["name"] == "none"), None)
        for run in points:
            rows.append({"table": "methods", "data": data, "model": model, "model_label": model_label(paper, model),
                         **point_row(run, base, seed)})
    return pd.DataFrame(rows)


def matched_strength(table: pd.DataFrame, bound: float = MATCHED_AQ_DROP) -> pd.DataFrame:
    """Per model and method, the row of the strongest setting whose aesthetic-quality drop is at most `bound`
    (the baseline row kept first); a method without one gets a row with only its name and a note."""
    if table.empty:
        return table.copy()
    rows = []
    for model, group in table.groupby("model", sort=False):
        for name, points in group.groupby("method", sort=False):
            if name == "none":
                rows.append(points.iloc[0].to_dict())
                continue
            drop = -pd.to_numeric(points["d_aesthetic_quality"], errors="coerce")
            inside = points[drop.notna() & (drop <= bound + 1e-9)]  # a drop of exactly `bound` is within it
            if inside.empty:
                first = points.iloc[0]
                rows.append({"table": "methods_matched", "data": first["data"], "model": model,
                             "model_label": first["model_label"], "method": name, "knob": first["knob"],
                             "note": f"no setting within {bound:g} AQ point of the baseline"})
                continue
            rows.append(inside.loc[inside["strength"].fillna(0.0).idxmax()].to_dict())
    return pd.DataFrame(rows, columns=table.columns).assign(table="methods_matched")


def build_methods_tables(runs: list[RunResult], data: str, paper: pd.DataFrame, seed: int = 0,
                         bound: float = MATCHED_AQ_DROP) -> dict[str, pd.DataFrame]:
    table = build_methods_table(runs, data, paper, seed)
    return {"methods": table, "methods_matched": matched_strength(table, bound)}


# ---- rendering -------------------------------------------------------------------------------------------

def _cell(row: dict, key: str, delta: bool = False) -> str:
    value = _num(row.get(key))
    if value is None:
        return ""
    text = f"{value:+.2f}" if delta else f"{value:.2f}"
    low, high = _num(row.get(f"{key}_ci_low")), _num(row.get(f"{key}_ci_high"))
    if low is not None and high is not None:
        text += f" [{low:+.2f}, {high:+.2f}]" if delta else f" [{low:.2f}, {high:.2f}]"
    p = _num(row.get(f"{key}_p"))
    return text + (f" p={p:.3g}" if delta and p is not None else "")


def display_frame(table: pd.DataFrame) -> pd.DataFrame:
    """One row per point: method, knob and strength, cost, each metric with its CI, the paired deltas."""
    records = table.to_dict("records")
    out = pd.DataFrame({
        "Model": [r["model_label"] for r in records],
        "Method": [f"{r['method']}{COVERAGE_MARKS.get(r.get('coverage'), '')}" for r in records],
        "Knob": [r.get("knob") or "" for r in records],
        "Strength": ["" if _num(r.get("strength")) is None else f"{r['strength']:g}" for r in records],
        "fwd/step": ["" if _num(r.get("forwards_per_step")) is None else f"{r['forwards_per_step']:g}" for r in records],
        "s/step (real size)": ["" if _num(r.get("seconds_per_step")) is None else
                               f"{r['seconds_per_step']:.2f}" + ("*" if r.get("cost_note") else "") for r in records],
        "n": ["" if _num(r.get("overall_n")) is None else str(int(r["overall_n"])) for r in records],
    })
    for m, title in METRICS.items():
        out[title] = [_cell(r, m) for r in records]
        if m in DELTA_METRICS:
            out[f"Δ {title}"] = [_cell(r, f"d_{m}", delta=True) for r in records]
    out["Note"] = [r.get("note") or "" for r in records]
    return out


def to_markdown(table: pd.DataFrame, title: str) -> str:
    lines = [f"## {title}", ""]
    if table.empty:
        return "\n".join([*lines, "_no rows_", ""])
    partial = sorted(set(table["coverage"].dropna()) & {"smoke", "subset"})
    if partial:
        lines += [f"**Not the full benchmark** ({' and '.join(partial)} rows): the numbers are not results.", ""]
    view = display_frame(table)
    lines += markdown_table(view)
    lines += ["", "Cells: mean in percent [95 % bootstrap CI over samples]; Δ: paired difference from the baseline "
              "(method none) [paired bootstrap CI] and sign-flip p. fwd/step: transformer forwards per denoising step "
              "(2 under true CFG); s/step: those forwards at the planner's measured seconds per forward at real size "
              "(omiti2v/generate/published_costs.yaml; * the method's own overhead assumed 1).", ""]
    return "\n".join(lines)


def write_methods_tables(tables: dict[str, pd.DataFrame], out_dir: str | Path) -> list[Path]:
    """<name>.csv (long format) and <name>.md per table, written atomically."""
    out_dir = Path(out_dir)
    written = []
    for name, table in tables.items():
        written.append(atomic_write_text(out_dir / f"{name}.csv", table.to_csv(index=False)))
        written.append(atomic_write_text(out_dir / f"{name}.md", to_markdown(table, TITLES[name])))
    return written


def plot_methods_pareto(table: pd.DataFrame, runs: list[RunResult], data: str, out_dir: Path) -> list[Path]:
    """Per model: semantic accuracy (overall VQA) against aesthetic quality and against dynamic degree, one curve
    per method through its strengths (in increasing order), 95 % CIs as error bars, the baseline as a star."""
    paths = []
    for model, group in ([] if table.empty else table.groupby("model", sort=False)):
        fig, axes = plt.subplots(1, 2, figsize=(12, 5))
        for ax, x in zip(axes, ("aesthetic_quality", "dynamic_degree"), strict=True):
            for name, points in group.groupby("method", sort=False):
                points = points.sort_values("strength", na_position="first")
                xs, ys = points[x].astype(float), points["overall"].astype(float)
                xerr = [(xs - points[f"{x}_ci_low"].astype(float)).fillna(0), (points[f"{x}_ci_high"].astype(float) - xs).fillna(0)]
                yerr = [(ys - points["overall_ci_low"].astype(float)).fillna(0), (points["overall_ci_high"].astype(float) - ys).fillna(0)]
                style = {"marker": "*", "markersize": 14, "linestyle": "none"} if name == "none" else {"marker": "o"}
                ax.errorbar(xs, ys, xerr=xerr, yerr=yerr, capsize=2, label="baseline" if name == "none" else name,
                            **style)
                for xv, yv, s in zip(xs, ys, points["strength"], strict=True):
                    if _num(s) is not None:
                        ax.annotate(f"{s:g}", (xv, yv), fontsize=6, xytext=(3, 3), textcoords="offset points")
            ax.set_xlabel(f"{METRICS[x]} (percent)")
            ax.set_ylabel("semantic accuracy: overall VQA (percent)")
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize=7)
        members = [r for r in runs if r.data == data and r.model == model]
        fig.suptitle(f"{group['model_label'].iloc[0]}: methods at every strength ({data}){coverage_mark(members)}")
        paths += _save(fig, out_dir, f"methods_pareto_{model}")
    return paths
