"""`omiti2v judge-agreement RUNS... --out DIR`: how the runs' numbers move when the judge changes.

Each summarized run folder contributes its headline judge (judge.jsonl, named by its config's judge.name) and
every judge of `omiti2v rejudge` (judges/<name>/judge.jsonl). A run is read as recorded, like the tables read it:
its identity from summary.json, its samples and their main categories from samples.csv, the questions and the
expected answers from the judge records; no benchmark is loaded. The statistics are omiti2v/report/agreement.py's:
- questions: per judge pair Cohen's kappa with a sample-clustered bootstrap CI (a sample is one run's video),
  and each judge's yes-rate beside the expected answers' yes-rate;
- rankings: per metric column, Kendall's tau between judges over the baselines (asm none) of one data set;
- deltas: per "+AlignVid" row (same data and model, asm != none vs asm none), the paired delta under each judge
  and whether its sign and significance survive the swap from the headline judge.
Writes judge_agreement.md, kappa.csv, bias.csv, ranks.csv, deltas.csv and judge_deltas.png.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf

from ..data import MAIN_CATEGORIES
from ..errors import SetupError
from ..judge.options import OFFICIAL
from ..runs import atomic_output, atomic_write_text, latest_records, make_folder, read_jsonl
from ..summary import JUDGE_KEY, read_sample_table, verdict_correct
from .agreement import answers_by_question, delta_survival, pairwise_report, rank_agreement
from .runs import run_folders

METRICS = ("overall", *MAIN_CATEGORIES)


@dataclass
class JudgedRun:
    """One summarized run with every judge's latest records."""

    path: Path
    data: str
    model: str
    asm: str
    schedule: str
    headline: str
    samples: pd.DataFrame  # samples.csv: the run's selection, with each sample's main category
    records: dict[str, list[dict]]  # judge name -> latest records

    @cached_property
    def questions(self) -> list[tuple[str, str]]:
        """(sample, question) of every selected sample's question some judge answered: in a judged run all of them,
        since the judge stage records every question, a missing video's as an error."""
        selected = set(self.samples.index)
        return sorted({(r["sample_id"], str(r["question_id"])) for recs in self.records.values() for r in recs
                       if r["sample_id"] in selected})

    def per_sample(self, judge: str, mode: str) -> pd.DataFrame:
        """Per-sample accuracy (0..1) under `judge`, with the sample's main category; a question this judge left
        unanswered counts as wrong, as in the summary (verdict_correct: free-text replies re-parsed)."""
        correct = {(r["sample_id"], str(r["question_id"])): verdict_correct(r, r["expected"])
                   for r in self.records[judge] if r.get("mode") == mode}
        frame = pd.DataFrame([(s, correct.get((s, q), False)) for s, q in self.questions],
                             columns=["sample_id", "correct"])
        out = frame.groupby("sample_id", sort=True).agg(accuracy=("correct", "mean"))
        out["main_category"] = self.samples.loc[out.index, "main_category"]
        return out


RECORDED = ("summary.json", "samples.csv", "config.yaml")


def load_judged_run(path: str | Path) -> JudgedRun:
    """A run as its summary stage recorded it: identity (summary.json), selection (samples.csv), the headline
    judge's name (config.yaml) and every judge's latest records."""
    path = Path(path)
    missing = [name for name in RECORDED if not (path / name).is_file()]
    if missing:
        raise SetupError(f"{path}: no {', '.join(missing)}; judge-agreement reads summarized runs (run their summary "
                         f"stage first, stages=[summary])")
    identity = json.loads((path / "summary.json").read_text(encoding="utf-8"))["run"]
    headline = str(OmegaConf.load(path / "config.yaml").judge.name)
    logs = {headline: path / "judge.jsonl"}
    logs.update({p.parent.name: p for p in sorted(path.glob("judges/*/judge.jsonl"))})
    records = {name: latest_records(read_jsonl(p), JUDGE_KEY) for name, p in logs.items() if p.exists()}
    return JudgedRun(path, str(identity["data"]), str(identity["model"]), str(identity["asm"]),
                     str(identity["schedule"]), headline, read_sample_table(path / "samples.csv"), records)


def question_level(runs: list[JudgedRun], mode: str, seed: int) -> dict:
    answers: dict[str, dict] = {}
    expected: dict = {}
    for run in runs:
        for judge, recs in run.records.items():
            tagged = [{**r, "sample_id": f"{run.path}::{r['sample_id']}"} for r in recs]
            answers.setdefault(judge, {}).update(answers_by_question(tagged, mode))
            expected.update({(r["sample_id"], str(r["question_id"])): r["expected"] for r in tagged})
    return pairwise_report(answers, expected, seed)


def metric_values(frame: pd.DataFrame, metric: str) -> pd.Series:
    return frame["accuracy"] if metric == "overall" else frame.loc[frame["main_category"] == metric, "accuracy"]


def rank_rows(runs: list[JudgedRun], mode: str) -> list[dict]:
    rows = []
    for data in sorted({r.data for r in runs}):
        baselines = [r for r in runs if r.data == data and r.asm == "none"]
        judges = sorted(set.intersection(*(set(r.records) for r in baselines))) if baselines else []
        for metric in METRICS:
            scores = {j: {} for j in judges}
            for run in baselines:
                for j in judges:
                    values = metric_values(run.per_sample(j, mode), metric)
                    if len(values):
                        scores[j][run.model] = 100.0 * float(values.mean())
            rows += [{"data": data, "metric": metric, **row} for row in rank_agreement(scores)]
    return rows


def delta_rows(runs: list[JudgedRun], mode: str, seed: int) -> list[dict]:
    rows = []
    for treated in (r for r in runs if r.asm != "none"):
        base = next((r for r in runs if (r.data, r.model, r.asm) == (treated.data, treated.model, "none")), None)
        if base is None:
            continue
        judges = sorted(set(base.records) & set(treated.records))
        if treated.headline not in judges:
            continue
        for metric in METRICS:
            per_judge = {}
            for j in judges:
                a, b = metric_values(base.per_sample(j, mode), metric), metric_values(treated.per_sample(j, mode), metric)
                common = a.index.intersection(b.index)
                per_judge[j] = (a[common].tolist(), b[common].tolist())
            if not per_judge[treated.headline][0]:
                continue
            out = delta_survival(per_judge, treated.headline, seed)
            for j, cell in out["judges"].items():
                rows.append({"data": treated.data, "model": treated.model, "row": f"{treated.asm}-{treated.schedule}",
                             "metric": metric, "judge": j, "headline": j == treated.headline, **cell,
                             "survives_all": out["survives_all"]})
    return rows


def build_report(paths: list[str | Path], mode: str = OFFICIAL, seed: int = 0) -> dict[str, pd.DataFrame]:
    runs = [load_judged_run(p) for p in run_folders(paths)]
    questions = question_level(runs, mode, seed)
    kappa = pd.DataFrame([{**c, "judges": " vs ".join(c["judges"])} for c in questions["kappa"]],
                         columns=["judges", "kappa", "ci95", "agreement", "n"])
    bias = pd.DataFrame([{"judge": j, **b} for j, b in questions["bias"].items()],
                        columns=["judge", "yes_rate", "expected_yes_rate", "bias", "n"])
    ranks = pd.DataFrame([{**r, "judges": " vs ".join(r["judges"])} for r in rank_rows(runs, mode)],
                         columns=["data", "metric", "judges", "tau", "p_value", "n"])
    deltas = pd.DataFrame(delta_rows(runs, mode, seed),
                          columns=["data", "model", "row", "metric", "judge", "headline", "delta", "ci95", "p_value",
                                   "n", "survives", "survives_all"])
    return {"kappa": kappa, "bias": bias, "ranks": ranks, "deltas": deltas}


def _cell(value) -> str:
    if isinstance(value, float):
        return "" if pd.isna(value) else f"{value:.3g}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_cell(v) for v in value) + "]"
    return "" if value is None else str(value)


def markdown_table(frame: pd.DataFrame) -> str:
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def to_markdown(report: dict[str, pd.DataFrame], mode: str) -> str:
    parts = [f"# Judge agreement ({mode} mode)", "",
             "kappa: Cohen's kappa on the questions both judges answered, 95 % CI resampling videos. bias: yes-rate "
             "minus the expected answers' yes-rate (points). tau: Kendall's tau of the baselines' order. A delta "
             "survives a judge when its sign and its significance (CI excluding 0) are the headline judge's.", ""]
    for name, title in (("kappa", "Question-level agreement"), ("bias", "Yes-bias"), ("ranks", "Baseline rank agreement"),
                        ("deltas", "+AlignVid deltas under each judge")):
        frame = report[name]
        parts += [f"## {title}", "", markdown_table(frame) if len(frame) else "(none)", ""]
    return "\n".join(parts)


def plot_deltas(deltas: pd.DataFrame, path: Path) -> Path:
    """Overall delta and its CI per +AlignVid row, one marker per judge."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    overall = deltas[deltas["metric"] == "overall"]
    rows = list(dict.fromkeys(f"{m} {r}" for m, r in zip(overall["model"], overall["row"], strict=True)))
    fig, ax = plt.subplots(figsize=(6, 1 + 0.5 * max(1, len(rows))))
    judges = sorted(overall["judge"].unique())
    for k, judge in enumerate(judges):
        sub = overall[overall["judge"] == judge]
        ys = [rows.index(f"{m} {r}") + 0.15 * (k - (len(judges) - 1) / 2) for m, r in zip(sub["model"], sub["row"], strict=True)]
        lo = [d - (c or [d, d])[0] for d, c in zip(sub["delta"], sub["ci95"], strict=True)]
        hi = [(c or [d, d])[1] - d for d, c in zip(sub["delta"], sub["ci95"], strict=True)]
        ax.errorbar(sub["delta"], ys, xerr=[lo, hi], fmt="o", capsize=3, label=judge)
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_yticks(range(len(rows)), rows)
    ax.set_xlabel("overall delta (points), 95 % CI")
    ax.legend(fontsize="small")
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)
    return path


def write_report(report: dict[str, pd.DataFrame], out_dir: str | Path, mode: str) -> list[Path]:
    out = make_folder(out_dir)
    written = [atomic_write_text(out / "judge_agreement.md", to_markdown(report, mode))]
    for name, frame in report.items():
        written.append(atomic_write_text(out / f"{name}.csv", frame.to_csv(index=False)))
    written.append(plot_deltas(report["deltas"], out / "judge_deltas.png"))
    return written
