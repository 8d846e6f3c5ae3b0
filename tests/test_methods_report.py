"""The methods comparison tables and Pareto plot from run folders with known per-sample values: every point with
its paired deltas and cost, the matched-strength choice, and the `make reproduce TABLE=methods` chain on tiny runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from omiti2v.report.methods import MATCHED_AQ_DROP, build_methods_tables, write_methods_tables
from omiti2v.report.paper import load_paper
from omiti2v.report.runs import discover_runs

REPO = Path(__file__).resolve().parents[1]
IDS = [f"s{i}" for i in range(8)]
BASE_AQ = 0.60


def write_run(root: Path, folder: str, name: str, strength, aq_drop: float, overall_gain: float, guidance="none",
              asm="none", forwards=1.0, knob=None) -> None:
    """A reported run whose aesthetic quality is the baseline's minus `aq_drop` points on every sample and whose
    accuracy is the baseline's plus `overall_gain` points."""
    path = root / "mini" / "wan2.1" / folder
    path.mkdir(parents=True)
    rng = np.random.default_rng(0)  # the same baseline draws in every run
    overall = rng.uniform(0.2, 0.8, len(IDS)) + overall_gain / 100
    pd.DataFrame({"sample_id": IDS, "main_category": ["modification", "addition", "deletion", "addition"] * 2,
                  "domain": "Objects", "overall": overall, "dynamic_degree": [0.0, 1.0] * 4,
                  "aesthetic_quality": BASE_AQ - aq_drop / 100, "imaging_quality": np.nan}).to_csv(path / "samples.csv",
                                                                                                  index=False)
    summary = {"run": {"name": f"mini/wan2.1/{folder}", "data": "mini", "model": "wan2.1", "asm": asm,
                       "schedule": "paper", "guidance": guidance},
               "benchmark": {"source": "mini", "hash": "sha256:" + "0" * 64, "n_samples": len(IDS)},
               "smoke": False, "profile": "paper", "metrics": {},
               "resolved_asm": {"strategy": "scalar" if asm == "scalar" else "none", "preset": "wan2.1", "sites": [],
                                "logit_multipliers": {}, "blocks": [], "window": None, "preset_gamma": True},
               "method": {"name": name, "knob": knob, "strength": strength, "forwards_per_step": forwards,
                          "guidance": None}}
    (path / "summary.json").write_text(json.dumps(summary))


@pytest.fixture
def runs(tmp_path):
    write_run(tmp_path, "none-paper", "none", None, 0.0, 0.0)
    for w, drop in ((2.0, 0.2), (3.0, 0.8), (5.0, 2.0)):
        write_run(tmp_path, f"none-paper-cfg{w}", "cfg", w, drop, 3.0 * w, guidance="cfg", forwards=2.0,
                  knob="CFG scale w")
    write_run(tmp_path, "none-paper-stg1.0", "stg", 1.0, 1.5, 1.0, guidance="stg", forwards=1.975, knob="STG scale s")
    write_run(tmp_path, "blur-image-paper", "blur-image", None, 0.5, 0.5, asm="blur-image")
    write_run(tmp_path, "scalar-paper", "scalar", 1.35, 0.9, 4.0, asm="scalar", knob="ASM gamma")
    write_run(tmp_path, "scalar-paper-gamma1.5", "scalar", 1.5, 1.2, 6.0, asm="scalar", knob="ASM gamma")
    return discover_runs(tmp_path)


def test_every_point_with_paired_deltas_and_cost(runs):
    tables = build_methods_tables(runs, "mini", load_paper())
    table = tables["methods"].set_index(["method", "strength"], drop=False)
    assert list(tables["methods"]["method"]) == ["none", "blur-image", "cfg", "cfg", "cfg", "scalar", "scalar", "stg"]
    assert table.loc[("cfg", 3.0), "d_aesthetic_quality"] == pytest.approx(-0.8)
    assert table.loc[("cfg", 3.0), "d_overall"] == pytest.approx(9.0)
    assert table.loc[("cfg", 3.0), "aesthetic_quality"] == pytest.approx(100 * BASE_AQ - 0.8)
    # cost: forwards x the planner's 3.39 s per Wan2.1 forward at real size x the method's measured overhead
    # (omiti2v/generate/published_costs.yaml: cfg 1.000, stg 0.988)
    assert table.loc[("cfg", 2.0), "seconds_per_step"] == pytest.approx(2 * 3.39)
    assert table.loc[("stg", 1.0), "seconds_per_step"] == pytest.approx(1.975 * 3.39 * 0.988, abs=1e-3)
    assert table.loc[("stg", 1.0), "cost_note"] == ""
    base = tables["methods"].iloc[0]
    assert base["method"] == "none" and pd.isna(base["d_overall"]) and base["forwards_per_step"] == 1.0


def test_matched_strength_is_the_strongest_setting_within_the_bound(runs):
    matched = build_methods_tables(runs, "mini", load_paper())["methods_matched"]
    chosen = {row["method"]: row for row in matched.to_dict("records")}
    assert MATCHED_AQ_DROP == 1.0
    assert list(chosen) == ["none", "blur-image", "cfg", "scalar", "stg"]
    assert chosen["cfg"]["strength"] == 3.0  # 2.0 drops 0.2, 3.0 drops 0.8, 5.0 drops 2.0 points
    assert chosen["scalar"]["strength"] == 1.35  # gamma 1.5 drops 1.2
    assert chosen["blur-image"]["d_aesthetic_quality"] == pytest.approx(-0.5)
    assert chosen["stg"]["note"] == "no setting within 1 AQ point of the baseline" and pd.isna(chosen["stg"]["overall"])
    loose = build_methods_tables(runs, "mini", load_paper(), bound=2.0)["methods_matched"]
    assert loose.set_index("method").loc["cfg", "strength"] == 5.0


def test_tables_render_and_the_cli_writes_tables_and_pareto_plot(runs, tmp_path):
    written = write_methods_tables(build_methods_tables(runs, "mini", load_paper()), tmp_path / "out")
    assert sorted(p.name for p in written) == ["methods.csv", "methods.md", "methods_matched.csv", "methods_matched.md"]
    md = (tmp_path / "out" / "methods_matched.md").read_text()
    assert "| cfg (subset) | CFG scale w | 3 | 2 | 6.78 |" in md and "no setting within 1 AQ point" in md
    assert "Δ Aesthetic Quality" in md and "-0.80 [-0.80, -0.80]" in md
    root = runs[0].path.parents[2]
    for kind in ("tables", "plots"):
        subprocess.run([sys.executable, "-m", "omiti2v.cli", kind, "--runs", str(root), "--out", str(tmp_path / kind)],
                       check=True, capture_output=True, cwd=REPO)
    assert (tmp_path / "tables" / "mini" / "methods.md").is_file()
    assert {p.name for p in (tmp_path / "plots" / "mini").glob("methods_pareto_*")} == {
        "methods_pareto_wan2.1.png", "methods_pareto_wan2.1.svg"}


def test_guidance_runs_never_stand_in_for_the_plain_model(runs):
    from omiti2v.report.runs import pick_run

    assert pick_run(runs, "mini", "wan2.1", "none").method["name"] == "none"
    assert pick_run(runs, "mini", "wan2.1", "none", guidance="cfg").guidance == "cfg"


@pytest.mark.slow
def test_make_reproduce_methods_on_tiny_runs(tmp_path):
    """`make reproduce TABLE=methods MODEL=wan2.1-tiny`, on one sample and a reduced grid: every guidance method end
    to end (generate, judge, score, summary), each summary recording method, strength and forwards per step, then
    the tables and the Pareto plot."""
    # every method at its conf/guidance/ strength, and cfg at a second point for its curve
    grid = ("[{model:wan2.1,asm:none,schedule:paper},{model:wan2.1,asm:none,schedule:paper,guidance:cfg,strengths:[2.0]},"
            + ",".join(f"{{model:wan2.1,asm:none,schedule:paper,guidance:{g}}}"
                       for g in ("cfg", "cfg-zero-star", "apg", "stg", "pag", "alg")) + "]")
    proc = subprocess.run(
        [sys.executable, str(REPO / "runners" / "reproduce.py"), "--table", "methods", "--model", "wan2.1-tiny",
         f"results_root={tmp_path}", "data.limit=1", f"experiment.sweeps={grid}"],
        capture_output=True, text=True, cwd=REPO, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    runs = {json.loads(p.read_text())["method"]["name"] + str(json.loads(p.read_text())["method"]["strength"]):
            json.loads(p.read_text()) for p in (tmp_path / "runs").rglob("summary.json")}
    assert set(runs) == {"noneNone", "cfg2.0", "cfg5.0", "cfg-zero-star5.0", "apg5.0", "stg1.0", "pag1.0", "alg0.2"}
    # the baseline and the six methods at their conf/guidance/ strengths share one multirun, cfg 2.0 has its own
    echoed = [line for line in proc.stdout.splitlines() if line.startswith(f"+ {sys.executable} -m omiti2v.eval -m ")]
    assert len(echoed) == 2 and any("guidance=none,cfg,cfg-zero-star,apg,stg,pag,alg" in line for line in echoed)
    steps = 2  # wan2.1-tiny
    assert runs["cfg5.0"]["method"]["forwards_per_step"] == 2.0
    assert runs["stg1.0"]["method"]["forwards_per_step"] == (1 + 2) / steps  # the perturbed pass from step 1
    assert runs["alg0.2"]["method"]["forwards_per_step"] == (3 + 2) / steps  # step 0 of 2 low-passed (0 <= 0.2)
    assert runs["noneNone"]["method"]["forwards_per_step"] == 1.0 and runs["noneNone"]["run"]["guidance"] == "none"
    assert all(r["failures"]["generation"] == [] for r in runs.values())
    table = (tmp_path / "tables" / "mini" / "methods.md").read_text()
    assert table in proc.stdout and "| cfg-zero-star (smoke) | CFG scale w | 5 | 2 |" in table
    assert (tmp_path / "tables" / "mini" / "methods_matched.md").is_file()
    assert (tmp_path / "plots" / "mini" / "methods_pareto_wan2.1-tiny.png").is_file()
