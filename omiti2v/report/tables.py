"""The paper's tables from run directories: every cell with n and a 95 % bootstrap CI over samples, every
delta a paired bootstrap CI and p-value, each beside the paper's number and the difference.

Long format (one row per table row, columns `<metric>`, `<metric>_ci_low`, `_ci_high`, `_n`, `_p`, `_paper`,
`_diff`, and `_rerun`, `_rerun_diff` for the authors' own re-run, the second reference) is the CSV; Markdown and
LaTeX render it compactly. Semantic Avg. and Tool Avg. are computed from their columns, for every row. Missing runs are empty cells. A run re-judged by
other judges (`omiti2v rejudge`: summary.json "judges") adds per-judge columns `<metric>@<judge>` (`_ci_low`,
`_ci_high`, `_n`) for the semantic metrics; tables whose runs have none keep exactly their columns.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf

from ..browse import markdown_links
from ..paths import CONF_DIR
from ..runs import atomic_write_text
from ..stats import paired_delta
from .paper import (
    ALIGNVID,
    AVERAGES,
    METRICS,
    RERUN,
    TABLE_COLUMNS,
    TITLES,
    load_paper,
    model_label,
    model_order,
    paper_row,
    rerun_source,
    rerun_spread,
)
from .replicates import group_delta, group_replicates, seed_text
from .runs import COVERAGE_MARKS, JUDGE_METRICS, RunResult, extra_judge_cells, paired_values, pick_run

log = logging.getLogger(__name__)

TABLES = {
    "baselines": "Baselines on OmitI2V",
    "alignvid": "Each model + AlignVid (ASM scalar, schedule paper), with paired deltas",
    "modulation": "Modulation-strategy ablation (schedule paper): none / scalar / energy",
    "schedule": "Guidance-schedule ablation (ASM scalar): blocks x steps",
}
MODULATIONS = ("none", "scalar", "energy")
SCHEDULES = ("paper", "all", "early", "mid", "late", "blocks-only", "steps-only")
SCHEDULE_DIR = CONF_DIR / "schedule"


@dataclass(frozen=True)
class CellSpec:
    """A table row from one run (asm, schedule=None for 'any') with the paper's row (model, paper_asm)."""

    label: str
    asm: str
    schedule: str | None
    paper_asm: str | None


@dataclass(frozen=True)
class DeltaSpec:
    """A row of treated-minus-base differences, paired by sample id."""

    label: str
    base: CellSpec
    treated: CellSpec


def markdown_table(view: pd.DataFrame, cell=str) -> list[str]:
    """The lines of a Markdown table of `view`: header, rule, one row per line, each value through `cell`
    with its pipes escaped."""
    lines = ["| " + " | ".join(map(str, view.columns)) + " |", "|" + "|".join("---" for _ in view.columns) + "|"]
    return lines + ["| " + " | ".join(cell(v).replace("|", "\\|") for v in row) + " |"
                    for row in view.itertuples(index=False)]


def schedule_axes(name: str, runs: list[RunResult]) -> tuple[str, str]:
    """(blocks, window) of a schedule as written: recorded by a run made with it, else conf/schedule/<name>.yaml."""
    for r in runs:
        written = (r.resolved_asm or {}).get("schedule")
        if r.schedule == name and written:
            return str(written.get("blocks", "")), str(written.get("window", ""))
    path = SCHEDULE_DIR / f"{name}.yaml"
    if path.is_file():
        cfg = OmegaConf.load(path)
        return str(cfg.get("blocks", "")), str(cfg.get("window", ""))
    return "", ""


def _empty_metrics(row: dict) -> None:
    for m in TABLE_COLUMNS:
        row.update({m: None, f"{m}_ci_low": None, f"{m}_ci_high": None, f"{m}_n": None if m in AVERAGES else 0,
                    f"{m}_p": None, f"{m}_paper": None, f"{m}_diff": None, f"{m}_rerun": None, f"{m}_rerun_diff": None})


def _averages_and_reruns(row: dict, rerun: dict, compare: bool) -> None:
    """The averages of the row's own values and of each reference's (`rerun`: the re-run's value per metric),
    and the differences of the row's values to the re-run."""
    for m in METRICS:
        row[f"{m}_rerun"] = rerun.get(m)
    for key, (_, components) in AVERAGES.items():
        for suffix in ("", "_paper", "_rerun"):
            values = [row[f"{c}{suffix}"] for c in components]
            row[f"{key}{suffix}"] = None if None in values else sum(values) / len(values)
    for m in TABLE_COLUMNS:
        for reference, difference in (("_paper", "_diff"), ("_rerun", "_rerun_diff")):
            if compare and row[m] is not None and row[m + reference] is not None:
                row[m + difference] = row[m] - row[m + reference]


def _set_judge_cell(row: dict, key: str, value, n=None, ci=None) -> None:
    row.update({key: value, f"{key}_ci_low": ci[0] if ci else None, f"{key}_ci_high": ci[1] if ci else None,
                f"{key}_n": n})


def judge_columns(table: pd.DataFrame) -> list[tuple[str, str]]:
    """(metric, judge) of every per-judge value column, in column order."""
    pairs = (c.partition("@") for c in table.columns)
    return [(m, j) for m, sep, j in pairs if sep and m in METRICS and f"{m}@{j}_n" in table.columns]


def _num(value) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def cell_row(spec: CellSpec, model: str, runs: list[RunResult], data: str, paper: pd.DataFrame, seed: int,
             judges: list[str] = ()) -> dict:
    run = pick_run(runs, data, model, spec.asm, spec.schedule)
    prow = paper_row(paper, model, spec.paper_asm) if spec.paper_asm else None
    row = {"kind": "run", "label": spec.label, "asm": spec.asm, "schedule": spec.schedule or (run.schedule if run else ""),
           "run": str(run.path) if run else "", "smoke": bool(run and run.smoke),
           "coverage": run.coverage if run else "", "n_samples": run.benchmark["n_samples"] if run else None}
    compare = run is not None and run.coverage == "full"  # a smoke run or a subset is never set against the paper
    _empty_metrics(row)
    for m in METRICS:
        if run is not None:
            cell = run.cell(m, seed)
            row[m], row[f"{m}_n"] = cell["value"], cell["n"]
            if cell["ci95"]:
                row[f"{m}_ci_low"], row[f"{m}_ci_high"] = cell["ci95"]
            if cell.get("seeds"):  # a seed-replicate group: mean over seeds, CI over samples and seeds
                row[f"{m}_seeds"], row[f"{m}_seed_sd"] = cell["seeds"], cell["seed_sd"]
        if prow is not None:
            row[f"{m}_paper"] = _num(prow.get(m))
    rerun = paper_row(paper, model, spec.paper_asm, RERUN) if spec.paper_asm else None
    _averages_and_reruns(row, {m: _num(rerun.get(m)) for m in METRICS} if rerun else {}, compare)
    for judge in judges:
        cells = extra_judge_cells(run.summary).get(judge, {}).get("metrics", {}) if run else {}
        for m in JUDGE_METRICS:
            cell = cells.get(m) or {}
            _set_judge_cell(row, f"{m}@{judge}", cell.get("value"), cell.get("n"), cell.get("ci95"))
    return row


def delta_row(spec: DeltaSpec, model: str, runs: list[RunResult], data: str, paper: pd.DataFrame, seed: int,
              judges: list[str] = ()) -> dict:
    base = pick_run(runs, data, model, spec.base.asm, spec.base.schedule)
    treated = pick_run(runs, data, model, spec.treated.asm, spec.treated.schedule)
    pb = paper_row(paper, model, spec.base.paper_asm) if spec.base.paper_asm else None
    pt = paper_row(paper, model, spec.treated.paper_asm) if spec.treated.paper_asm else None
    row = {"kind": "delta", "label": spec.label, "asm": spec.treated.asm, "schedule": spec.treated.schedule or "",
           "run": "", "smoke": bool((base and base.smoke) or (treated and treated.smoke)),
           "coverage": _weakest(r.coverage for r in (base, treated) if r), "n_samples": None}
    compare = row["coverage"] == "full" and base is not None and treated is not None
    _empty_metrics(row)
    for m in METRICS:
        pair = paired_values(base, treated, m) if base and treated else None
        if pair is not None:
            d = group_delta(base, treated, m, seed) or paired_delta(*pair, seed=seed)
            row[m], row[f"{m}_n"], row[f"{m}_p"] = d["delta"], d["n"], d["p_value"]
            if d.get("seeds"):  # two replicate groups: paired by seed and sample
                row[f"{m}_seeds"], row[f"{m}_seed_sd"] = d["seeds"], d["seed_sd"]
            if d["ci95"]:
                row[f"{m}_ci_low"], row[f"{m}_ci_high"] = d["ci95"]
        if pb is not None and pt is not None and _num(pb.get(m)) is not None and _num(pt.get(m)) is not None:
            row[f"{m}_paper"] = float(pt[m]) - float(pb[m])
    rb, rt = (paper_row(paper, model, c.paper_asm, RERUN) if c.paper_asm else None for c in (spec.base, spec.treated))
    reruns = {m: float(rt[m]) - float(rb[m]) for m in METRICS
              if rb is not None and rt is not None and _num(rb.get(m)) is not None and _num(rt.get(m)) is not None}
    _averages_and_reruns(row, reruns, compare)
    for judge in judges:  # the difference of the two runs' cells: extra judges' per-sample values are not read here
        b, t = ({} if r is None else extra_judge_cells(r.summary).get(judge, {}).get("metrics", {}) for r in (base, treated))
        for m in JUDGE_METRICS:
            values = [(c.get(m) or {}).get("value") for c in (b, t)]
            _set_judge_cell(row, f"{m}@{judge}", None if None in values else values[1] - values[0])
    return row


def _weakest(coverages) -> str:
    found = set(coverages)
    return next((c for c in ("smoke", "subset", "full") if c in found), "")


def table_specs(name: str, schedules: list[str]) -> list[CellSpec | DeltaSpec]:
    baseline = CellSpec("baseline", "none", None, "none")
    if name == "baselines":
        return [baseline]
    if name == "alignvid":
        alignvid = CellSpec("+ AlignVid", ALIGNVID[0], ALIGNVID[1], "alignvid")
        return [baseline, alignvid, DeltaSpec("Δ AlignVid", baseline, alignvid)]
    if name == "modulation":
        rows: list[CellSpec | DeltaSpec] = [baseline]
        treated = [CellSpec(f"ASM {asm}", asm, "paper", asm) for asm in MODULATIONS[1:]]
        return rows + treated + [DeltaSpec(f"Δ {t.label}", baseline, t) for t in treated]
    if name == "schedule":
        treated = [CellSpec(f"schedule {s}", "scalar", s, None) for s in schedules]
        return [baseline, *treated, *(DeltaSpec(f"Δ {t.label}", baseline, t) for t in treated)]
    raise ValueError(f"unknown table {name!r}; expected one of {list(TABLES)}")


def table_models(name: str, data: str, runs: list[RunResult], paper: pd.DataFrame) -> list[str]:
    """Rows of a table: the models the paper reports in it, plus every model with a run of that data."""
    mine = [r for r in runs if r.data == data]
    if name == "baselines":
        models = set(paper["model"]) | {r.model for r in mine}
    elif name == "alignvid":
        models = set(paper.loc[paper["asm"] == "alignvid", "model"]) | {r.model for r in mine if (r.asm, r.schedule) == ALIGNVID}
    elif name == "modulation":
        models = set(paper.loc[paper["table"] == "modulation_ablation", "model"]) | {
            r.model for r in mine if r.asm in MODULATIONS[1:]}
    else:
        models = {r.model for r in mine if r.asm == "scalar"}
    return model_order(paper, models)


def build_table(name: str, data: str, runs: list[RunResult], paper: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    schedules = list(SCHEDULES) + sorted({r.schedule for r in runs if r.data == data and r.asm == "scalar"} - set(SCHEDULES))
    judges = sorted({j for r in runs if r.data == data for j in extra_judge_cells(r.summary)})
    rows = []
    for model in table_models(name, data, runs, paper):
        for spec in table_specs(name, schedules):
            build = delta_row if isinstance(spec, DeltaSpec) else cell_row
            row = build(spec, model, runs, data, paper, seed, judges)
            row = {"table": name, "data": data, "model": model, "model_label": model_label(paper, model), **row}
            if name == "schedule":
                row["blocks"], row["window"] = schedule_axes(row["schedule"], runs) if row["asm"] != "none" else ("", "")
            rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    if frame[[f"{m}_rerun" for m in METRICS]].notna().any().any():
        frame.attrs["rerun"] = {"source": rerun_source(paper), "spread": rerun_spread(paper)}
    unused = [j for j in judges if frame[[f"{m}@{j}" for m in JUDGE_METRICS]].isna().all().all()]  # none of its runs
    return frame.drop(columns=[f"{m}@{j}{s}" for j in unused for m in JUDGE_METRICS for s in ("", "_ci_low", "_ci_high", "_n")])


def build_tables(runs: list[RunResult], data: str, paper: pd.DataFrame | None = None, seed: int = 0) -> dict[str, pd.DataFrame]:
    paper = load_paper() if paper is None else paper
    runs = group_replicates(runs)  # the replicates of one configuration are one row
    return {name: build_table(name, data, runs, paper, seed) for name in TABLES}


# ---- rendering -------------------------------------------------------------------------------------------

def _fmt(value, digits: int = 2, sign: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def display_frame(table: pd.DataFrame) -> pd.DataFrame:
    """Compact view: per metric 'ours [CI] n=…' (deltas with p) and 'paper (ours − paper)', followed where the
    authors re-ran the row by 're-run R (ours − R)'."""
    out = pd.DataFrame()
    if table.empty:
        return out
    out["Model"] = table["model_label"]
    out["Row"] = table["label"] + table["coverage"].map(lambda c: COVERAGE_MARKS.get(c, ""))
    if "blocks" in table:
        out["Blocks"], out["Steps"] = table["blocks"], table["window"]
    records = [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
               for r in table.to_dict("records")]
    for m in TABLE_COLUMNS:
        ours, theirs = [], []
        for r in records:
            delta = r["kind"] == "delta"
            ours.append(_cell_text(r, m))
            references = []
            for reference, difference, name in (("_paper", "_diff", ""), ("_rerun", "_rerun_diff", "re-run ")):
                text = _fmt(r.get(m + reference), sign=delta)
                if text and r.get(m + difference) is not None:
                    text += f" ({_fmt(r[m + difference], sign=True)})"
                references += [name + text] if text else []
            theirs.append("; ".join(references))
        out[TITLES[m]] = ours
        out[f"{TITLES[m]} paper (Δ)"] = theirs
    for m, judge in judge_columns(table):
        out[f"{METRICS[m]} ({judge})"] = [_cell_text(r, f"{m}@{judge}") for r in records]
    return out


def _cell_text(r: dict, key: str) -> str:
    """'value [CI] n=…' (a delta with its sign, and p where it has one); '' for an empty cell."""
    delta = r["kind"] == "delta"
    text = _fmt(r[key], sign=delta)
    if text and r[f"{key}_ci_low"] is not None:
        text += f" [{_fmt(r[f'{key}_ci_low'], sign=delta)}, {_fmt(r[f'{key}_ci_high'], sign=delta)}]"
    text += seed_text(r, key) if text else ""
    if text and r[f"{key}_n"] is not None:
        text += f" n={r[f'{key}_n']}"
        if delta and r.get(f"{key}_p") is not None:
            text += f" p={r[f'{key}_p']:.3g}"
    return text


def to_markdown(table: pd.DataFrame, title: str) -> str:
    view = display_frame(table)
    lines = [f"## {title}", ""]
    partial = sorted(set(table.get("coverage", pd.Series(dtype=str))) & {"smoke", "subset"})
    if partial:
        lines += [f"**Not the full benchmark** ({' and '.join(partial)} rows): their numbers are not comparable with "
                  "the paper's, so no difference to the paper is computed.", ""]
    if view.empty:
        return "\n".join([*lines, "_no rows_", ""])
    lines += markdown_table(view)
    lines += ["", "Cells: mean in percent [95 % percentile-bootstrap CI over samples] n; Δ rows: paired by sample id, "
              "paired bootstrap CI, two-sided sign-flip permutation p. Paper column: the paper's number "
              "(ours − paper). Paper 'Overall' is derived from the category scores and shares. Semantic Avg.: the "
              "mean of the three categories; Tool Avg.: the mean of Dynamic Degree and Aesthetic Quality.", ""]
    if any(c.endswith("_seed_sd") for c in table.columns):
        lines += ["Cells with '±sd (k seeds)': seed replicates (docs/replicates.md): the mean over k seeds, the standard "
                  "deviation of the per-seed means, and a CI resampling seeds and samples; their Δ rows pair the same "
                  "seed and sample, with a bootstrap p.", ""]
    if "rerun" in table.attrs:
        lines += [rerun_note(**table.attrs["rerun"]), ""]
    if judge_columns(table):
        lines += ["Columns '<metric> (<judge>)': the same videos judged by another judge (`omiti2v rejudge`), in "
                  "the run's judge mode where that judge ran it; their Δ rows are the difference of the two cells, "
                  "without a paired CI (see `omiti2v judge-agreement` for paired deltas per judge).", ""]
    return "\n".join(lines)


def rerun_note(source: str | None, spread: float | None) -> str:
    """What the second reference is and how to read a reproduction against it."""
    gap = f"up to {spread:.1f} points" if spread is not None else "by a few points"
    return (f"'re-run': the AlignVid authors' own independent full-OmitI2V re-run with their released code "
            f"({source or 'the official AlignVid repository'}), reported beside the paper's numbers (ours − re-run). "
            f"It differs from the paper by {gap} per category: that spread between two runs of the official "
            "procedure is what a reproduction should be judged against, not the paper's numbers alone.")


def to_latex(table: pd.DataFrame, title: str) -> str:
    view = display_frame(table)
    if view.empty:
        return f"% {title}: no rows\n"
    return view.style.hide(axis="index").format(escape="latex").to_latex(
        caption=title.replace("_", r"\_"), hrules=True, column_format="l" * len(view.columns))


def write_tables(tables: dict[str, pd.DataFrame], out_dir: str | Path) -> list[Path]:
    """<name>.csv (long format), <name>.md and <name>.tex per table, written atomically."""
    out_dir = Path(out_dir)
    written = []
    for name, table in tables.items():
        title = TABLES.get(name, name)
        written.append(atomic_write_text(out_dir / f"{name}.csv", table.to_csv(index=False)))
        written.append(atomic_write_text(out_dir / f"{name}.md", to_markdown(table, title) + markdown_links(table, out_dir)))
        written.append(atomic_write_text(out_dir / f"{name}.tex", to_latex(table, title)))
    return written
