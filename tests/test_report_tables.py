"""Tables from synthetic run directories with known per-sample results: exact cells, CIs against scipy,
deltas paired by sample id, paper numbers and differences, missing runs as empty cells, files written."""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from report_fixtures import add_extra_judge, make_run, per_sample_accuracy
from scipy import stats

from omiti2v.data import load_benchmark
from omiti2v.report import build_tables, discover_runs, load_paper, write_tables
from omiti2v.report.cli import register
from omiti2v.report.plots import config_name, coverage_mark, gamma_sweeps, make_plots
from omiti2v.report.runs import group_by_benchmark
from omiti2v.report.tables import to_markdown

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


def as_full_benchmark(path: Path, **benchmark) -> None:
    """Rewrite a run's summary.json as if it had been made on another benchmark selection."""
    summary = json.loads((path / "summary.json").read_text())
    summary["benchmark"].update(benchmark)
    (path / "summary.json").write_text(json.dumps(summary))


@pytest.fixture(scope="module")
def full_tables(tmp_path_factory):
    root = tmp_path_factory.mktemp("full")
    for asm, seed in (("none", 1), ("scalar", 2), ("energy", 3)):
        path, _ = make_run(root, "wan2.1", asm, "paper", seed=seed)
        as_full_benchmark(path, source="hf:AIPeanutman/OmitI2V", n_samples=367)
    return build_tables(discover_runs(root), "mini", load_paper(), seed=SEED)


def test_paper_differences_only_for_full_benchmark_runs(tables, full_tables):
    base = row(full_tables["baselines"], "wan2.1", "baseline")
    assert base["coverage"] == "full"
    assert base["modification_paper"] == 72.35 and base["aesthetic_quality_paper"] == 63.12
    assert base["modification_diff"] == pytest.approx(base["modification"] - 72.35)
    delta = row(full_tables["alignvid"], "wan2.1", "Δ AlignVid")
    assert delta["addition_paper"] == pytest.approx(79.54 - 71.75)
    assert delta["addition_diff"] == pytest.approx(delta["addition"] - (79.54 - 71.75))
    energy = row(full_tables["modulation"], "wan2.1", "ASM energy")
    assert energy["deletion_paper"] == 67.86
    # the same runs on the 12-sample mini set: the paper's number is shown, no difference is computed
    mini = row(tables["baselines"], "wan2.1", "baseline")
    assert mini["coverage"] == "subset" and mini["modification_paper"] == 72.35
    assert all(pd.isna(mini[f"{m}_diff"]) for m in ("overall", "modification", "aesthetic_quality"))
    assert pd.isna(row(tables["alignvid"], "wan2.1", "Δ AlignVid")["overall_diff"])
    md = to_markdown(tables["baselines"], "Baselines")
    assert "**Not the full benchmark** (subset rows)" in md and "| baseline (subset) |" in md
    assert "Not the full benchmark" not in to_markdown(full_tables["baselines"], "Baselines")


def test_runs_are_grouped_by_benchmark_and_smoke_is_marked(tmp_path):
    a, _ = make_run(tmp_path, "wan2.1", "none", "paper", seed=1)
    b, _ = make_run(tmp_path, "wan2.1", "scalar", "paper", seed=2)
    as_full_benchmark(b, hash="sha256:" + "ab" * 32)  # same data name, another selection
    summary = json.loads((a / "summary.json").read_text())
    summary["smoke"] = True
    (a / "summary.json").write_text(json.dumps(summary))
    groups = group_by_benchmark(discover_runs(tmp_path))
    assert sorted(groups) == sorted([f"mini-{summary['benchmark']['hash'][7:19]}", "mini-abababababab"])
    assert [r.coverage for r in groups[f"mini-{summary['benchmark']['hash'][7:19]}"]] == ["smoke"]
    assert main(["tables", "--runs", str(tmp_path), "--out", str(tmp_path / "t")]) == 0
    smoke_md = (tmp_path / "t" / f"mini-{summary['benchmark']['hash'][7:19]}" / "baselines.md").read_text()
    assert "| baseline (smoke) |" in smoke_md and "(smoke rows)" in smoke_md
    other = pd.read_csv(tmp_path / "t" / "mini-abababababab" / "baselines.csv")
    assert other.loc[other["model"] == "wan2.1", "overall"].isna().all()  # the smoke baseline is not in this group
    assert coverage_mark(groups["mini-abababababab"]) == " [SUBSET: not the full benchmark]"


def test_make_tables_honours_omiti2v_results(tmp_path):
    make_run(tmp_path / "runs", "wan2.1", "none", "paper", seed=1)
    env = {**os.environ, "OMITI2V_RESULTS": str(tmp_path)}
    proc = subprocess.run(["make", "-s", "tables", f"VENV={Path(sys.executable).parents[1]}", "STAMP="],
                          cwd=Path(__file__).resolve().parents[1], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "tables" / "mini" / "baselines.csv").is_file() and (tmp_path / "plots" / "mini").is_dir()


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
    points = sweeps[("wan2.1", "scalar", "paper")]
    assert [g for g, _ in points] == pytest.approx([1.0, 1.2 * 1.35, 1.35 * 1.35])
    assert [r.path.name for _, r in points] == ["none-paper", "scalar-paper-g1.2", "scalar-paper"]


def test_gamma_label_comes_from_the_recorded_multipliers(runs):
    """Wan2.1 with asm.gamma_q=1.2: the image branch ran at 1.2, the text branch at 1.2 x the preset's gamma_k
    1.35 (its key is scaled too); the label says both, not "γ=1.2"."""
    found = {r.path.name: r for r in discover_runs(runs[0]) if r.model == "wan2.1"}
    assert config_name(found["scalar-paper-g1.2"]) == "scalar-paper (logits ×1.2 cross_image, ×1.62 cross_text)"
    assert config_name(found["scalar-paper"]) == "scalar-paper"  # the preset's gamma: no label
    assert found["scalar-paper"].multiplier_label == "logits ×1.35 cross_image, ×1.8225 cross_text"


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
    (tmp_path / "nothing").mkdir()
    assert main(["tables", "--runs", str(tmp_path / "nothing"), "--out", str(tmp_path / "t")]) == 0
    base = pd.read_csv(tmp_path / "t" / "omiti2v" / "baselines.csv")
    assert base["overall"].isna().all() and base["deletion_paper"].notna().sum() == 7  # newer baselines: empty


def test_a_missing_runs_folder_or_data_name_is_an_error_and_writes_nothing(runs, tmp_path, capsys):
    """A typo in --runs or --data must not write empty tables over the real ones."""
    from omiti2v.cli import main as cli_main

    out = tmp_path / "t"
    assert cli_main(["tables", "--runs", str(tmp_path / "typo"), "--out", str(out)]) == 2
    assert "--runs" in capsys.readouterr().err and not out.exists()
    assert cli_main(["plots", "--runs", str(runs[0]), "--data", "omiti2vv", "--out", str(out)]) == 2
    assert "no run of that data" in capsys.readouterr().err and not out.exists()


def test_tables_build_offline_with_the_benchmark_unavailable(runs, tables, monkeypatch):
    """Every cell, CI and paired delta comes from summary.json and samples.csv: no benchmark is loaded."""
    import omiti2v.data
    import omiti2v.data.benchmark
    from omiti2v.data import DatasetUnavailableError

    def unavailable(*args, **kwargs):
        raise DatasetUnavailableError("offline: no benchmark")

    for module in (omiti2v.data, omiti2v.data.benchmark):
        monkeypatch.setattr(module, "load_benchmark", unavailable)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    offline = build_tables(discover_runs(runs[0]), "mini", load_paper(), seed=SEED)
    delta = row(offline["alignvid"], "wan2.1", "Δ AlignVid")
    assert delta["overall_n"] == 12 and delta["overall_ci_low"] is not None and delta["overall_p"] is not None
    for name, table in tables.items():
        pd.testing.assert_frame_equal(offline[name], table)


def test_run_reported_before_samples_csv_keeps_its_summary_cells(tmp_path, caplog):
    base, _ = make_run(tmp_path, "wan2.1", "none", "paper", seed=1)
    make_run(tmp_path, "wan2.1", "scalar", "paper", seed=2)
    (base / "samples.csv").unlink()
    summary = json.loads((base / "summary.json").read_text())
    with caplog.at_level("WARNING", logger="omiti2v.report.runs"):
        tables = build_tables(discover_runs(tmp_path), "mini", load_paper())
    assert f"{base / 'samples.csv'}: missing (reported before per-sample tables)" in caplog.text
    cell = row(tables["baselines"], "wan2.1", "baseline")
    assert (cell["overall"], cell["overall_n"]) == (summary["metrics"]["overall"]["value"], 12)
    assert [cell["overall_ci_low"], cell["overall_ci_high"]] == summary["metrics"]["overall"]["ci95"]
    assert pd.isna(row(tables["alignvid"], "wan2.1", "Δ AlignVid")["overall"])  # no per-sample values to pair


def test_rejudged_runs_add_per_judge_columns(tmp_path):
    """Runs re-judged by other judges (summary.json "judges") get each judge's semantic cells as extra columns, in
    the run's judge mode; a Δ row there is the difference of the two cells; a table none of whose runs a judge
    re-judged has no columns for it, and the runs' own columns are unchanged."""
    base, _ = make_run(tmp_path, "wan2.1", "none", "paper", seed=1)
    treated, _ = make_run(tmp_path, "wan2.1", "scalar", "paper", seed=2)
    energy, _ = make_run(tmp_path, "wan2.1", "energy", "paper", seed=3)
    plain = build_tables(discover_runs(tmp_path), "mini", load_paper(), seed=SEED)
    add_extra_judge(base, "qwen3-vl-8b", 40.0)
    add_extra_judge(treated, "qwen3-vl-8b", 47.5)
    add_extra_judge(energy, "internvl3.5-8b", 60.0)
    judged = build_tables(discover_runs(tmp_path), "mini", load_paper(), seed=SEED)
    for name, table in plain.items():
        pd.testing.assert_frame_equal(judged[name][list(table.columns)], table)
    alignvid, modulation = judged["alignvid"], judged["modulation"]
    cell = row(alignvid, "wan2.1", "baseline")
    assert (cell["overall@qwen3-vl-8b"], cell["overall@qwen3-vl-8b_n"]) == (40.0, 12)  # parity, the run's mode
    assert (cell["overall@qwen3-vl-8b_ci_low"], cell["deletion@qwen3-vl-8b"]) == (35.0, 43.0)
    assert row(alignvid, "wan2.1", "Δ AlignVid")["overall@qwen3-vl-8b"] == pytest.approx(7.5)
    assert not any("internvl3.5-8b" in c for c in alignvid.columns)  # no run of this table was re-judged by it
    assert row(modulation, "wan2.1", "ASM energy")["overall@internvl3.5-8b"] == 60.0
    assert pd.isna(row(modulation, "wan2.1", "Δ ASM energy")["overall@internvl3.5-8b"])  # its base lacks that judge
    md = to_markdown(alignvid, "t")
    assert "Overall (qwen3-vl-8b)" in md and "40.00 [35.00, 45.00] n=12" in md and "+7.50" in md
    assert "another judge" in md and "another judge" not in to_markdown(plain["alignvid"], "t")


def test_plots_written(runs, tmp_path):
    paths = make_plots(discover_runs(runs[0]), "mini", load_paper(), tmp_path / "p", seed=SEED)
    names = {p.name for p in paths}
    assert {"gain_vs_cost.png", "gain_vs_cost.svg", "category_bars.png", "category_bars.svg",
            "gamma_wan2.1_scalar_paper.png", "gamma_wan2.1_scalar_paper.svg"} <= names
    for p in paths:
        head = Path(p).read_bytes()[:8]
        assert head.startswith(b"\x89PNG") if p.suffix == ".png" else b"<?xml" in head or b"<svg" in Path(p).read_bytes()[:200]
