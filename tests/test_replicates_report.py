"""Seed replicates end to end: sibling run folders, the group summary, and tables whose cells, deltas and flips
are computed from every (seed, sample) value, checked against the runs' known per-sample results."""

import json

import numpy as np
import pandas as pd
import pytest
from report_fixtures import make_run, per_sample_accuracy
from test_eval_smoke import run_eval

from omiti2v.replicates import mcnemar_exact
from omiti2v.report.paper import load_paper
from omiti2v.report.replicates import GROUP_FILE, ReplicateGroup, group_replicates, write_group_summary
from omiti2v.report.runs import RunResult, discover_runs, pick_run
from omiti2v.report.supplementary import build_supplementary, negligence_rows
from omiti2v.report.tables import build_tables
from omiti2v.summary import validate_summary

SEEDS = (0, 1, 2)


def make_replicates(root, asm: str, offset: int) -> dict[int, dict]:
    """Replicate runs <asm>-paper-seed<k> of wan2.1 with known verdicts; returns truth per seed."""
    truths = {}
    for k in SEEDS:
        path, truths[k] = make_run(root, "wan2.1", asm, "paper", seed=offset + k, dirname=f"{asm}-paper-seed{k}")
        summary = json.loads((path / "summary.json").read_text())
        summary["run"]["name"] += f"-seed{k}"
        summary["seeds"] = {"base": 42 + k, "replicate": k}
        validate_summary(summary)
        (path / "summary.json").write_text(json.dumps(summary))
    return truths


def test_replicate_groups_in_tables_group_summary_and_flips(tmp_path):
    base, treated = make_replicates(tmp_path, "none", 10), make_replicates(tmp_path, "scalar", 20)
    make_run(tmp_path, "wan2.1", "scalar", "paper", seed=99)  # a plain run beside the group: the group is preferred
    runs = group_replicates(discover_runs(tmp_path))
    groups = [r for r in runs if isinstance(r, ReplicateGroup)]
    assert len(runs) == 3 and len(groups) == 2 and all(g.seeds == list(SEEDS) for g in groups)
    assert pick_run(runs, "mini", "wan2.1", "scalar", "paper").replicated

    # Cells: the mean over every (seed, sample) value, the spread of the per-seed means.
    accuracy = {k: pd.Series(per_sample_accuracy(t)) for k, t in treated.items()}
    per_seed = [100 * accuracy[k].mean() for k in SEEDS]
    table = build_tables(discover_runs(tmp_path), "mini", load_paper())["alignvid"]
    row = table.loc[(table["model"] == "wan2.1") & (table["label"] == "+ AlignVid")].iloc[0]
    assert row["overall"] == pytest.approx(np.mean(per_seed))
    assert row["overall_seed_sd"] == pytest.approx(np.std(per_seed, ddof=1)) and row["overall_seeds"] == 3
    assert row["overall_ci_low"] < row["overall"] < row["overall_ci_high"]
    delta = table.loc[(table["model"] == "wan2.1") & (table["kind"] == "delta")].iloc[0]
    base_acc = {k: pd.Series(per_sample_accuracy(t)) for k, t in base.items()}
    assert delta["overall"] == pytest.approx(np.mean([100 * (accuracy[k] - base_acc[k]).mean() for k in SEEDS]))
    assert delta["overall_seeds"] == 3 and 0 <= delta["overall_p"] <= 1

    # The group summary: schema-valid, with paired deltas and per-seed flips counted from the known verdicts.
    written = write_group_summary([tmp_path / "mini" / "wan2.1" / f"scalar-paper-seed{k}" for k in SEEDS])
    assert written == tmp_path / "mini" / "wan2.1" / "scalar-paper-replicates" / GROUP_FILE
    summary = json.loads(written.read_text())
    assert summary["metrics"]["overall"]["value"] == pytest.approx(np.mean(per_seed))
    assert summary["baseline"]["group"] == "mini/wan2.1/none-paper" and summary["baseline"]["seeds"] == list(SEEDS)
    for flip in summary["baseline"]["flips"]:
        k = flip["seed"]
        gained = sum(not base[k]["correct"][q] and ok for q, ok in treated[k]["correct"].items())
        lost = sum(base[k]["correct"][q] and not ok for q, ok in treated[k]["correct"].items())
        assert (flip["wrong_to_right"], flip["right_to_wrong"]) == (gained, lost)
        assert flip["p_value"] == pytest.approx(mcnemar_exact(gained, lost))
    flips = build_supplementary(discover_runs(tmp_path), "mini")["flips"]
    assert sorted(flips["seed"]) == list(SEEDS) and set(flips["run"]) == {"scalar-paper"}


def test_negligence_rows_per_category_and_correlation(tmp_path):
    samples = pd.DataFrame({
        "main_category": ["deletion", "deletion", "addition", "addition", "modification"],
        "domain": ["x"] * 5,
        "overall": [0.0, 0.5, 1.0, 0.25, 0.75],
        "copy_index": [0.9, 0.7, 0.2, 0.8, 0.4],
    }, index=pd.Index([f"s{i}" for i in range(5)], name="sample_id"))
    run = RunResult(tmp_path, {"run": {"data": "mini", "model": "m", "asm": "none", "schedule": "paper", "name": "x"},
                               "benchmark": {"source": "mini", "hash": "h", "n_samples": 5}, "smoke": False}, samples)
    (row,) = negligence_rows(run, seed=0)
    assert row["deletion"] == pytest.approx(80.0) and row["addition"] == pytest.approx(50.0)
    assert row["all"] == pytest.approx(60.0) and row["all_n"] == 5
    assert row["spearman_accuracy"] == pytest.approx(-1.0)  # a perfectly inverse ranking


@pytest.mark.slow
def test_make_eval_with_seeds_writes_sibling_runs_and_a_group_summary(tmp_path):
    proc = run_eval(tmp_path, "seeds=[0,1,2]", "data.limit=2", "scorer.metrics=[copy_index]")
    assert "replicates: 3 seed(s) [0, 1, 2]" in proc.stdout and "GPU-hours" in proc.stdout
    model_dir = tmp_path / "runs" / "mini" / "wan2.1-tiny"
    for k in SEEDS:
        summary = json.loads((model_dir / f"scalar-paper-seed{k}" / "summary.json").read_text())
        assert summary["seeds"]["replicate"] == k and summary["seeds"]["base"] == 42 + k
        assert summary["run"]["name"] == f"mini/wan2.1-tiny/scalar-paper-seed{k}"
        sidecars = [json.loads(p.read_text()) for p in (model_dir / f"scalar-paper-seed{k}" / "videos").glob("*.json")]
        assert len(sidecars) == 2 and {s["seed"] for s in sidecars} == {42 + k}  # paper profile: one seed per run
    group = json.loads((model_dir / "scalar-paper-replicates" / GROUP_FILE).read_text())
    assert [r["seed"] for r in group["replicates"]] == list(SEEDS) and group["metrics"]["overall"]["seeds"] == 3
    assert group["metrics"]["copy_index"]["n"] == 2 and len(group["metrics"]["copy_index"]["per_seed"]) == 3
