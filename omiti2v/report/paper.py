"""The paper's numbers (results/paper/*.csv, from arXiv 2512.01334), the authors' own re-run as a second reference,
and the names that link them to runs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..paths import shipped

PAPER_DIR = shipped("results/paper")

# Table columns, in the paper's order, plus the harness's overall VQA score.
METRICS: dict[str, str] = {
    "modification": "Modification",
    "addition": "Addition",
    "deletion": "Deletion",
    "dynamic_degree": "Dynamic Degree",
    "aesthetic_quality": "Aesthetic Quality",
    "overall": "Overall",
}
CATEGORY_METRICS = ("modification", "addition", "deletion")
# Averages the authors' README reports, computed from the columns (for the references and the harness's runs).
AVERAGES: dict[str, tuple[str, tuple[str, ...]]] = {
    "semantic_avg": ("Semantic Avg.", CATEGORY_METRICS),
    "tool_avg": ("Tool Avg.", ("dynamic_degree", "aesthetic_quality")),
}
# The tables' column order: the authors' README's, then the harness's overall VQA score.
TABLE_COLUMNS = ("modification", "addition", "deletion", "semantic_avg", "dynamic_degree", "aesthetic_quality",
                 "tool_avg", "overall")
TITLES = {**METRICS, **{key: title for key, (title, _) in AVERAGES.items()}}
# OmitI2V's main-category shares. The overall score is the mean over samples, i.e. the category
# means weighted by these shares; the paper does not report it, so its overall is derived from them.
CATEGORY_SHARES = {"modification": 0.342, "addition": 0.332, "deletion": 0.326}
# The harness setting that reproduces the paper's "+ AlignVid" rows.
ALIGNVID = ("scalar", "paper")
# Optional file of baselines the paper does not report (names only, empty metric cells).
NEWER_BASELINES = "newer_baselines.csv"
# Optional second reference: the authors' independent re-run (rows of their repository's README, with `source`).
AUTHORS_RERUN = "authors_rerun.csv"
RERUN = "authors_rerun"  # its `table` value
OPTIONAL = (NEWER_BASELINES, AUTHORS_RERUN)


def derived_overall(row) -> float | None:
    values = [row.get(c) for c in CATEGORY_METRICS]
    if any(v is None or pd.isna(v) for v in values):
        return None
    total = sum(CATEGORY_SHARES.values())
    return float(sum(CATEGORY_SHARES[c] * v for c, v in zip(CATEGORY_METRICS, values, strict=True)) / total)


def average(row, components) -> float | None:
    """The mean of `components` of `row`; None when one is missing."""
    values = [row.get(c) for c in components]
    if any(v is None or pd.isna(v) for v in values):
        return None
    return float(sum(values) / len(values))


def load_paper(paper_dir: str | Path = PAPER_DIR) -> pd.DataFrame:
    """All reference rows: method, model, asm ('none' | 'alignvid' | ablation strategy), the metrics and their
    averages; `table` is the file's stem ("newer_baselines" rows have no numbers, "authors_rerun" rows are the
    second reference, with their `source`)."""
    paper_dir = Path(paper_dir)
    frames = []
    for name in ("main.csv", "modulation_ablation.csv", *OPTIONAL):
        path = paper_dir / name
        if not path.is_file() and name in OPTIONAL:
            continue
        if not path.is_file():
            raise FileNotFoundError(f"{path}: the paper's numbers are missing (arXiv 2512.01334, Tables 1 and 4)")
        frame = pd.read_csv(path)
        missing = {"method", "model", "asm", *CATEGORY_METRICS} - set(frame.columns)
        if missing:
            raise ValueError(f"{path}: missing columns {sorted(missing)}")
        frames.append(frame.assign(table=Path(name).stem))
    paper = pd.concat(frames, ignore_index=True)
    records = paper.to_dict("records")
    paper["overall"] = [derived_overall(r) for r in records]
    for key, (_, components) in AVERAGES.items():
        paper[key] = [average(r, components) for r in records]
    return paper


def paper_row(paper: pd.DataFrame, model: str, asm: str, table: str | None = None) -> dict | None:
    """The paper's numbers for a model key (a '-tiny' variant maps to its full-size model) and setting;
    `table=RERUN`: the authors' re-run's instead."""
    base = model.removesuffix("-tiny")
    rows = paper[paper["table"] == RERUN] if table == RERUN else paper[paper["table"] != RERUN]
    hit = rows[(rows["model"] == base) & (rows["asm"] == asm)]
    return None if hit.empty else hit.iloc[0].to_dict()


def rerun_spread(paper: pd.DataFrame) -> float | None:
    """The largest gap, in points, between a category score of the authors' re-run and the paper's for the same
    model and setting: how far two runs of the official procedure land apart. None without the re-run."""
    gaps = []
    for row in paper[paper["table"] == RERUN].to_dict("records"):
        theirs = paper_row(paper, row["model"], row["asm"])
        if theirs is not None:
            gaps += [abs(row[c] - theirs[c]) for c in CATEGORY_METRICS]
    return max(gaps) if gaps else None


def rerun_source(paper: pd.DataFrame) -> str | None:
    rows = paper[paper["table"] == RERUN]
    return None if rows.empty or "source" not in rows else str(rows["source"].iloc[0])


def model_label(paper: pd.DataFrame, model: str) -> str:
    """The paper's name for a model; tiny smoke variants keep their config name beside it."""
    row = paper_row(paper, model, "none")
    if row is None:
        return model
    return row["method"] if model == row["model"] else f"{row['method']} [{model}]"


def model_order(paper: pd.DataFrame, models) -> list[str]:
    """Paper order first (a tiny variant right after its model), then the rest alphabetically."""
    ranks = {m: i for i, m in enumerate(dict.fromkeys(paper["model"]))}
    return sorted(set(models), key=lambda m: (ranks.get(m.removesuffix("-tiny"), len(ranks)), m))
