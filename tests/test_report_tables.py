"""Tables from synthetic run directories with known per-sample results: exact cells, CIs against scipy,
deltas paired by sample id, paper numbers and differences, missing runs as empty cells, files written."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from report_fixtures import make_run, per_sample_accuracy
from scipy import stats

from omiti2v.data import load_benchmark
from omiti2v.report import build_tables, discover_runs, load_paper, write_tables
from omiti2v.report.cli import register
from omiti2v.report.plots import gamma_sweeps, make_plots

SEED = 0


def main(argv: list[str]) -> int:
    """The `omiti2v tables|plots` subcommands alone (the full console script imports every feature)."""
    parser = argparse.ArgumentParser(prog="omiti2v")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)
CATEGORY = {s.id: s.main_category for s in load_benchmark("mini")}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    truths = {
        "none": make_run(root, "wan2.1", "none", "paper", seed=1)[1],
        "scalar": make_run(root, "wan2.1", "scalar", "paper", seed=2, reverse=True)[1],
        "energy": make_run(root, "wan2.1", "energy", "paper", seed=3)[1],
        "mid": make_run(root, "wan2.1", "scalar", "mid", seed=4)[1],
        "g1.2": make_run(root, "wan2.1", "scalar", "paper", seed=5, gamma_q=1.2, dirname="scalar-paper-g1.2")[1],
    }
    return root, truths


@pytest.fixture(scope="module")
def tables(runs):
    return build_tables(discover_runs(runs[0]), "mini", load_paper(), seed=SEED)


def values(truth: dict, metric: str) -> dict[str, float]:
    """Per-sample truth in benchmark order (the bootstrap's resampling indices follow the sample order)."""
    acc = per_sample_accuracy(truth)
    if metric == "overall":
        by_id = acc
    elif metric in ("modification", "addition", "deletion"):
        by_id = {s: v for s, v in acc.items() if CATEGORY[s] == metric}
    else:
        by_id = truth[metric]
    return {s: by_id[s] for s in CATEGORY if s in by_id}


def scipy_ci(x: np.ndarray) -> tuple[float, float]:
    res = stats.bootstrap((x,), np.mean, n_resamples=2000, confidence_level=0.95, method="percentile",
                          rng=np.random.default_rng(SEED))
    return 100 * res.confidence_interval.low, 100 * res.confidence_interval.high


def row(table: pd.DataFrame, model: str, label: str) -> dict:
    hit = table[(table["model"] == model) & (table["label"] == label)]
    assert len(hit) == 1, (model, label)
    return hit.iloc[0].to_dict()


@pytest.mark.parametrize("metric", ["overall", "modification", "addition", "deletion", "dynamic_degree", "aesthetic_quality"])
def test_cells_exact_with_scipy_ci(runs, tables, metric):
    truth = runs[1]["scalar"]
    cell = row(tables["alignvid"], "wan2.1", "+ AlignVid")
    x = np.array(list(values(truth, metric).values()))
    assert cell[metric] == pytest.approx(100 * x.mean())
    assert cell[f"{metric}_n"] == len(x)
    assert (cell[f"{metric}_ci_low"], cell[f"{metric}_ci_high"]) == pytest.approx(scipy_ci(x))


def test_cells_agree_with_the_run_summary(runs, tables):
    import json

    summary = json.loads((runs[0] / "mini" / "wan2.1" / "none-paper" / "summary.json").read_text())
    base = row(tables["baselines"], "wan2.1", "baseline")
    for metric, cell in summary["metrics"].items():
        if metric in base:
            assert base[metric] == pytest.approx(cell["value"]) and base[f"{metric}_n"] == cell["n"]


@pytest.mark.parametrize("metric", ["overall", "deletion", "aesthetic_quality", "dynamic_degree"])
def test_alignvid_delta_paired_by_sample_id(runs, tables, metric):
    base, treated = values(runs[1]["none"], metric), values(runs[1]["scalar"], metric)
    ids = list(base)
    a, b = np.array([base[i] for i in ids]), np.array([treated[i] for i in ids])
    delta = row(tables["alignvid"], "wan2.1", "Δ AlignVid")
    assert delta[metric] == pytest.approx(100 * (b - a).mean())
    assert delta[f"{metric}_n"] == len(ids)
    ref = stats.bootstrap((b, a), lambda x, y, axis=-1: np.mean(x - y, axis=axis), paired=True, n_resamples=2000,
                          method="percentile", rng=np.random.default_rng(SEED), vectorized=True)
    assert (delta[f"{metric}_ci_low"], delta[f"{metric}_ci_high"]) == pytest.approx(
        (100 * ref.confidence_interval.low, 100 * ref.confidence_interval.high))
    perm = stats.permutation_test((b, a), lambda x, y, axis=-1: np.mean(x - y, axis=axis), permutation_type="samples",
                                  n_resamples=2000, rng=np.random.default_rng(SEED), vectorized=True)
    assert delta[f"{metric}_p"] == pytest.approx(perm.pvalue)


def test_paper_numbers_and_differences(tables):
    base = row(tables["baselines"], "wan2.1", "baseline")
    assert base["modification_paper"] == 72.35 and base["aesthetic_quality_paper"] == 63.12
    assert base["modification_diff"] == pytest.approx(base["modification"] - 72.35)
    delta = row(tables["alignvid"], "wan2.1", "Δ AlignVid")
    assert delta["addition_paper"] == pytest.approx(79.54 - 71.75)
    assert delta["addition_diff"] == pytest.approx(delta["addition"] - (79.54 - 71.75))
    energy = row(tables["modulation"], "wan2.1", "ASM energy")
    assert energy["deletion_paper"] == 67.86


def test_missing_runs_are_empty_cells(tables):
    fp = row(tables["alignvid"], "framepack", "+ AlignVid")
    assert math.isnan(fp["modification"]) and fp["modification_n"] == 0 and fp["run"] == ""
    assert fp["modification_paper"] == 68.22
    assert set(tables["baselines"]["model"]) >= {"hunyuan-i2v", "easyanimate", "wan2.1"}
    late = row(tables["schedule"], "wan2.1", "schedule late")
    assert math.isnan(late["overall"]) and (late["blocks"], late["window"]) == ("preset", "late")



def test_schedule_ablation_row(runs, tables):
    mid = row(tables["schedule"], "wan2.1", "schedule mid")
    assert mid["overall"] == pytest.approx(100 * np.mean(list(per_sample_accuracy(runs[1]["mid"]).values())))
    assert (mid["blocks"], mid["window"]) == ("preset", "mid")


def test_default_gamma_run_is_the_table_run_and_sweep_is_found(runs, tables):
    cell = row(tables["alignvid"], "wan2.1", "+ AlignVid")
    assert cell["run"].endswith("scalar-paper")
    sweeps = gamma_sweeps(discover_runs(runs[0]), "mini")
    assert list(sweeps) == [("wan2.1", "scalar", "paper")]
    assert [r.gamma for r in sweeps[("wan2.1", "scalar", "paper")]] == [1.0, 1.2, 1.35]


def test_write_tables_and_cli(runs, tables, tmp_path):
    written = write_tables(tables, tmp_path / "t")
    assert {p.suffix for p in written} == {".csv", ".md", ".tex"} and len(written) == 12
    md = (tmp_path / "t" / "alignvid.md").read_text()
    assert "Wan 2.1" in md and "77.20" in md and "p=" in md
    assert r"\begin{tabular}" in (tmp_path / "t" / "modulation.tex").read_text()
    back = pd.read_csv(tmp_path / "t" / "alignvid.csv")
    assert back.loc[back["label"] == "Δ AlignVid", "overall"].iloc[0] == pytest.approx(
        row(tables["alignvid"], "wan2.1", "Δ AlignVid")["overall"])
    assert main(["tables", "--runs", str(runs[0]), "--out", str(tmp_path / "cli")]) == 0
    assert sorted(p.name for p in (tmp_path / "cli" / "mini").iterdir())[:3] == ["alignvid.csv", "alignvid.md", "alignvid.tex"]


def test_no_runs_gives_paper_only_tables(tmp_path):
    assert main(["tables", "--runs", str(tmp_path / "nothing"), "--out", str(tmp_path / "t")]) == 0
    base = pd.read_csv(tmp_path / "t" / "omiti2v" / "baselines.csv")
    assert base["overall"].isna().all() and base["deletion_paper"].notna().sum() == 7  # newer baselines: empty


def test_summary_fallback_when_benchmark_unavailable(tmp_path):
    path, _ = make_run(tmp_path, "wan2.1", "none", "paper", seed=1)
    cfg = (path / "config.yaml").read_text().replace("source: mini", "source: local").replace("root: null", f"root: {tmp_path / 'nope'}", 1)
    (path / "config.yaml").write_text(cfg)
    import json

    summary = json.loads((path / "summary.json").read_text())
    table = build_tables(discover_runs(tmp_path), "mini", load_paper())["baselines"]
    assert row(table, "wan2.1", "baseline")["overall"] == pytest.approx(summary["metrics"]["overall"]["value"])


def test_plots_written(runs, tmp_path):
    paths = make_plots(discover_runs(runs[0]), "mini", load_paper(), tmp_path / "p", seed=SEED)
    names = {p.name for p in paths}
    assert {"gain_vs_cost.png", "gain_vs_cost.svg", "category_bars.png", "category_bars.svg",
            "gamma_wan2.1_scalar_paper.png", "gamma_wan2.1_scalar_paper.svg"} <= names
    for p in paths:
        head = Path(p).read_bytes()[:8]
        assert head.startswith(b"\x89PNG") if p.suffix == ".png" else b"<?xml" in head or b"<svg" in Path(p).read_bytes()[:200]
