"""The paper's numbers (results/paper/*.csv, from REFERENCE §6) and the names that link them to runs."""

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
# OmitI2V's main-category shares (REFERENCE §1). The overall score is the mean over samples, i.e. the category
# means weighted by these shares; the paper does not report it, so its overall is derived from them.
CATEGORY_SHARES = {"modification": 0.342, "addition": 0.332, "deletion": 0.326}
# The harness setting that reproduces the paper's "+ AlignVid" rows.
ALIGNVID = ("scalar", "paper")
# Optional file of baselines the paper does not report (names only, empty metric cells).
NEWER_BASELINES = "newer_baselines.csv"


def derived_overall(row) -> float | None:
    values = [row.get(c) for c in CATEGORY_METRICS]
    if any(v is None or pd.isna(v) for v in values):
        return None
    total = sum(CATEGORY_SHARES.values())
    return float(sum(CATEGORY_SHARES[c] * v for c, v in zip(CATEGORY_METRICS, values, strict=True)) / total)


def load_paper(paper_dir: str | Path = PAPER_DIR) -> pd.DataFrame:
    """All paper rows: method, model, asm ('none' | 'alignvid' | ablation strategy) and the metrics; `table` is
    the file's stem ("newer_baselines" rows have no numbers)."""
    paper_dir = Path(paper_dir)
    frames = []
    for name in ("main.csv", "modulation_ablation.csv", NEWER_BASELINES):
        path = paper_dir / name
        if not path.is_file() and name == NEWER_BASELINES:
            continue
        if not path.is_file():
            raise FileNotFoundError(f"{path}: the paper's numbers are missing (REFERENCE §6)")
        frame = pd.read_csv(path)
        missing = {"method", "model", "asm", *CATEGORY_METRICS} - set(frame.columns)
        if missing:
            raise ValueError(f"{path}: missing columns {sorted(missing)}")
        frames.append(frame.assign(table=Path(name).stem))
    paper = pd.concat(frames, ignore_index=True)
    paper["overall"] = [derived_overall(r) for r in paper.to_dict("records")]
    return paper


def paper_row(paper: pd.DataFrame, model: str, asm: str) -> dict | None:
    """The paper's numbers for a model key (a '-tiny' variant maps to its full-size model) and setting."""
    base = model.removesuffix("-tiny")
    hit = paper[(paper["model"] == base) & (paper["asm"] == asm)]
    return None if hit.empty else hit.iloc[0].to_dict()


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
