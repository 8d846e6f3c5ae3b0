"""Figures from run directories (matplotlib Agg, PNG + SVG): semantic gain vs aesthetic cost, per-category
bars with CIs, and metrics against the recorded logit multiplier where a gamma sweep exists."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ..runs import atomic_output, make_folder  # noqa: E402
from ..stats import paired_delta  # noqa: E402
from .paper import METRICS, model_label, model_order  # noqa: E402
from .runs import RunResult, paired_values, pick_run  # noqa: E402

BAR_METRICS = ("modification", "addition", "deletion", "overall", "dynamic_degree", "aesthetic_quality")


def _save(fig, out_dir: Path, stem: str) -> list[Path]:
    make_folder(out_dir)
    paths = []
    for ext in ("png", "svg"):
        path = out_dir / f"{stem}.{ext}"
        with atomic_output(path) as tmp:
            fig.savefig(tmp, dpi=150, bbox_inches="tight", metadata={"Date": None} if ext == "svg" else None)
        paths.append(path)
    plt.close(fig)
    return paths


def _err(value, ci) -> list[list[float]]:
    """Asymmetric error bar half-widths from a CI (zero where there is none)."""
    if value is None or not ci:
        return [[0.0], [0.0]]
    return [[value - ci[0]], [ci[1] - value]]


def coverage_mark(runs: list[RunResult]) -> str:
    """Title suffix for runs that do not cover the full benchmark: such figures must never pass as results."""
    partial = sorted({r.coverage for r in runs} - {"full"})
    return f" [{' + '.join(partial).upper()}: not the full benchmark]" if partial else ""


def config_name(run: RunResult) -> str:
    """The run's asm-schedule, with its recorded logit multipliers unless it ran the preset's gamma."""
    name = f"{run.asm}-{run.schedule}"
    if run.guidance != "none":
        name += f" + {run.guidance} {run.method.get('strength')}"
    return name if (run.resolved_asm or {}).get("preset_gamma") is True else f"{name} ({run.multiplier_label})"


def plot_gain_vs_cost(runs: list[RunResult], data: str, paper: pd.DataFrame, out_dir: Path, seed: int = 0) -> list[Path]:
    """Overall VQA gain (y) vs aesthetic-quality loss (x) of every config against its model's baseline,
    paired by sample id with paired-bootstrap CIs; the paper's configs as hollow markers."""
    fig, ax = plt.subplots(figsize=(7, 5))
    mine = [r for r in runs if r.data == data]
    colors = dict(zip(model_order(paper, {r.model for r in mine} | set(paper["model"])), plt.cm.tab10.colors * 3, strict=False))
    for run in mine:
        base = pick_run(mine, data, run.model, "none")
        if run.asm == "none" or base is None:
            continue
        gain = _delta(base, run, "overall", seed)
        aq = _delta(base, run, "aesthetic_quality", seed)
        if gain["delta"] is None or aq["delta"] is None:
            continue
        cost = -aq["delta"]
        cost_ci = [-aq["ci95"][1], -aq["ci95"][0]] if aq["ci95"] else None
        ax.errorbar(cost, gain["delta"], xerr=_err(cost, cost_ci), yerr=_err(gain["delta"], gain["ci95"]),
                    fmt="o", color=colors.get(run.model), capsize=3)
        ax.annotate(f"{model_label(paper, run.model)}: {config_name(run)}", (cost, gain["delta"]), fontsize=7,
                    xytext=(4, 4), textcoords="offset points")
    for row in paper[paper["asm"] != "none"].to_dict("records"):
        base = paper[(paper["model"] == row["model"]) & (paper["asm"] == "none")]
        if base.empty:
            continue
        b = base.iloc[0]
        cost, gain = b["aesthetic_quality"] - row["aesthetic_quality"], row["overall"] - b["overall"]
        ax.scatter(cost, gain, facecolors="none", edgecolors=colors.get(row["model"], "gray"), marker="s")
        ax.annotate(f"paper: {row['method']}", (cost, gain), fontsize=6, color="gray", xytext=(4, -8), textcoords="offset points")
    ax.axhline(0, color="k", lw=0.5)
    ax.axvline(0, color="k", lw=0.5)
    ax.set_xlabel("aesthetic cost (baseline − config, points)")
    ax.set_ylabel("semantic gain: overall VQA (config − baseline, points)")
    ax.set_title(f"Semantic gain vs aesthetic cost ({data}); squares: paper{coverage_mark(mine)}")
    return _save(fig, out_dir, "gain_vs_cost")


def _delta(base: RunResult, treated: RunResult, metric: str, seed: int) -> dict:
    pair = paired_values(base, treated, metric)
    return paired_delta(*pair, seed=seed) if pair is not None else {"delta": None, "ci95": None}


def plot_category_bars(runs: list[RunResult], data: str, paper: pd.DataFrame, out_dir: Path, seed: int = 0) -> list[Path]:
    """Per model, every config's score per category and visual metric with 95 % CIs."""
    mine = [r for r in runs if r.data == data]
    models = model_order(paper, {r.model for r in mine})
    if not models:
        return []
    fig, axes = plt.subplots(len(models), 1, figsize=(9, 3.2 * len(models)), squeeze=False)
    x = np.arange(len(BAR_METRICS))
    for ax, model in zip(axes[:, 0], models, strict=True):
        configs = sorted((r for r in mine if r.model == model), key=lambda r: (r.asm != "none", config_name(r)))
        width = 0.8 / len(configs)
        for i, run in enumerate(configs):
            cells = [run.cell(m, seed) for m in BAR_METRICS]
            values = np.array([np.nan if c["value"] is None else c["value"] for c in cells])
            lo = [0 if not c["ci95"] else c["value"] - c["ci95"][0] for c in cells]
            hi = [0 if not c["ci95"] else c["ci95"][1] - c["value"] for c in cells]
            ax.bar(x + (i - (len(configs) - 1) / 2) * width, values, width, yerr=[lo, hi], capsize=2, label=config_name(run))
        ax.set_xticks(x, [METRICS[m] for m in BAR_METRICS], fontsize=8)
        ax.set_ylabel("percent")
        ax.set_ylim(0, 100)
        ax.set_title(model_label(paper, model), fontsize=9)
        ax.legend(fontsize=7, ncol=min(4, len(configs)))
    fig.suptitle(f"Per-category scores with 95 % bootstrap CIs ({data}){coverage_mark(mine)}")
    return _save(fig, out_dir, "category_bars")


def gamma_sweeps(runs: list[RunResult], data: str) -> dict[tuple[str, str, str], list[tuple[float, RunResult]]]:
    """(model, asm, schedule) -> (strongest logit multiplier, run) at two or more distinct recorded multipliers
    (the first run of each), in increasing order, with the model's baseline at 1."""
    groups: dict[tuple[str, str, str], dict[float, RunResult]] = defaultdict(dict)
    for r in runs:
        if r.data == data and r.asm != "none" and r.guidance == "none" and r.strongest_multiplier is not None:
            groups[(r.model, r.asm, r.schedule)].setdefault(r.strongest_multiplier, r)
    sweeps = {}
    for key, by_gamma in groups.items():
        if len(by_gamma) >= 2:
            base = pick_run(runs, data, key[0], "none")
            if base is not None:
                by_gamma.setdefault(1.0, base)
            sweeps[key] = sorted(by_gamma.items(), key=lambda item: item[0])
    return sweeps


def plot_gamma_sweeps(runs: list[RunResult], data: str, paper: pd.DataFrame, out_dir: Path, seed: int = 0) -> list[Path]:
    paths = []
    for (model, asm, schedule), points in gamma_sweeps(runs, data).items():
        fig, ax = plt.subplots(figsize=(6, 4))
        gammas, sweep = [g for g, _ in points], [r for _, r in points]
        for metric in BAR_METRICS:
            cells = [r.cell(metric, seed) for r in sweep]
            values = [np.nan if c["value"] is None else c["value"] for c in cells]
            lo = [0 if not c["ci95"] else c["value"] - c["ci95"][0] for c in cells]
            hi = [0 if not c["ci95"] else c["ci95"][1] - c["value"] for c in cells]
            ax.errorbar(gammas, values, yerr=[lo, hi], marker="o", capsize=3, label=METRICS[metric])
        ax.set_xlabel("strongest logit multiplier over the modulated sites (recorded; 1 = no ASM)")
        ax.set_ylabel("percent")
        ax.set_title(f"{model_label(paper, model)}: ASM {asm}, schedule {schedule} ({data}){coverage_mark(sweep)}",
                     fontsize=9)
        ax.legend(fontsize=7)
        paths += _save(fig, out_dir, f"gamma_{model}_{asm}_{schedule}")
    return paths


def make_plots(runs: list[RunResult], data: str, paper: pd.DataFrame, out_dir: str | Path, seed: int = 0) -> list[Path]:
    out_dir = Path(out_dir)
    return (plot_gain_vs_cost(runs, data, paper, out_dir, seed) + plot_category_bars(runs, data, paper, out_dir, seed)
            + plot_gamma_sweeps(runs, data, paper, out_dir, seed))
