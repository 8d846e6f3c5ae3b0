"""`make reproduce`: the runs of each paper table, their GPU-hours without a GPU, resume and the multiruns."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from omiti2v.costs import run_cost
from omiti2v.reproduce import TABLES, multirun_commands, plan_runs, reproduce

REPO = Path(__file__).resolve().parents[1]
MAIN_RUNS = [f"omiti2v/{m}/none-paper" for m in ("hunyuan-i2v", "wan2.1", "skyreels-v2-i2v", "skyreels-v2-df",
                                                  "framepack", "framepack-f1", "easyanimate")] + [
    f"omiti2v/{m}/scalar-paper" for m in ("framepack", "framepack-f1", "wan2.1")]


def test_dry_run_main_lists_the_paper_runs_and_their_gpu_hours(tmp_path, capsys):
    # Guidance pinned to the paper's 1.0 (one forward per step for Wan); FramePack's CFG key is true_cfg_scale.
    assert reproduce("main", [f"results_root={tmp_path}", "++model.sampling.guidance_scale=1.0"], dry_run=True) == 0
    out = capsys.readouterr().out.splitlines()
    listed = [line.split()[0] for line in out[1:-1]]
    assert listed == MAIN_RUNS and all("pending" in line for line in out[1:-1])
    wan = next(line for line in out if line.split()[0] == "omiti2v/wan2.1/none-paper")
    assert "1 fwd x 40 calls x 3.39 s =  135.6 s/video, 367 samples:   13.8 GPU-h" in wan  # 135.6 * 367 / 3600
    framepack = next(line for line in out if line.split()[0] == "omiti2v/framepack/none-paper")
    assert "1 fwd x 125 calls x 1.17 s =  146.2 s/video, 367 samples:   14.9 GPU-h" in framepack
    assert "not measured (make plan MODEL=easyanimate)" in out[7]
    # 2 x 13.83 (Wan) + 4 x 14.91 (FramePack, F1 assumed equal) = 87.3
    assert out[-1] == "total: 87.3 GPU-h for 6 measured runs (87.3 GPU-h still to run); 4 runs not measured"


def test_wan_cost_halves_at_guidance_one_and_energy_costs_its_measured_factor():
    model = {"name": "wan2.1", "sampling": {"guidance_scale": 5.0}}
    cfg5, cfg1 = run_cost(model, "scalar", 367), run_cost({**model, "sampling": {"guidance_scale": 1.0}}, "scalar", 367)
    assert cfg5.seconds_per_video == pytest.approx(6.78 * 40) and cfg1.gpu_hours / cfg5.gpu_hours == 0.5
    assert run_cost({"name": "framepack", "sampling": {}}, "energy", 10).seconds_per_video == pytest.approx(125 * 1.17 * 1.022)
    assert run_cost({"name": "wan2.1-tiny", "sampling": {}}, "none", 1) is None


def test_finished_runs_are_skipped_and_pending_ones_grouped_per_asm_and_schedule(tmp_path):
    args = [f"results_root={tmp_path}", "hydra/launcher=slurm"]
    _, runs = plan_runs("schedule", args)
    assert len(runs) == 2 + 2 * 6
    done = next(r for r in runs if r.run_name == "omiti2v/wan2.1/scalar-mid")
    done.run_dir.mkdir(parents=True)
    (done.run_dir / "summary.json").write_text(json.dumps({"failures": {"generation": [], "judge": []}}))
    failed = next(r for r in runs if r.run_name == "omiti2v/framepack/scalar-late")
    failed.run_dir.mkdir(parents=True)
    (failed.run_dir / "summary.json").write_text(json.dumps({"failures": {"generation": ["sample_3"], "judge": []}}))
    _, runs = plan_runs("schedule", args)
    assert [r.run_name for r in runs if r.done] == ["omiti2v/wan2.1/scalar-mid"]
    commands = [c[3:] for c in multirun_commands(runs, args)]
    assert ["-m", "model=framepack", "asm=scalar", "schedule=mid", *args] in commands
    assert ["-m", "model=framepack,wan2.1", "asm=scalar", "schedule=late", *args] in commands
    assert len(commands) == 7 and all(c[-1] == "hydra/launcher=slurm" for c in commands)


def test_every_table_has_an_experiment_and_make_passes_dry_run():
    assert set(TABLES) == {"main", "modulation", "schedule", "methods"}
    made = subprocess.run(["make", "-n", "reproduce", "TABLE=schedule", "DRY_RUN=1", "ARGS=hydra/launcher=slurm"],
                          cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert "runners/reproduce.py --table schedule --dry-run hydra/launcher=slurm" in made


def test_echoed_multirun_runs_as_printed_and_dry_run_0_runs(tmp_path, capsys, monkeypatch):
    """Each multirun is echoed with its interpreter (copy-paste runs it); `DRY_RUN=0` is not a dry run."""
    import shlex
    import sys

    for value, dry in (("0", False), ("1", True), ("", False)):
        made = subprocess.run(["make", "-n", "reproduce", "TABLE=main", f"DRY_RUN={value}", "STAMP="], cwd=REPO,
                              capture_output=True, text=True, check=True).stdout
        assert ("--dry-run" in made) is dry, value
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda command, **kwargs: calls.append(command) or
                        subprocess.CompletedProcess(command, 1))
    assert reproduce("main", [f"results_root={tmp_path}"]) == 1  # the first multirun "fails": stop there
    echoed = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("+ "))
    assert shlex.split(echoed[2:]) == calls[0] and calls[0][:4] == [sys.executable, "-m", "omiti2v.eval", "-m"]


def test_methods_experiment_and_its_dry_run_cost_and_refusals(tmp_path, capsys):
    from omiti2v.reproduce import compose, sweep_points

    experiment = compose(["+experiment=methods"]).experiment
    points = [p for sweep in experiment.sweeps for p in sweep_points(sweep, None)]
    assert len(points) == len(set(points)) == 27 and ("wan2.1", "scalar", "paper", "none", None, 1.5) in points
    assert {p[3] for p in points} == {"none", "cfg", "cfg-zero-star", "apg", "stg", "pag", "alg"}
    grid = ("experiment.sweeps=[{model:wan2.1,asm:scalar,schedule:paper,gammas:[1.5]},"
            "{model:wan2.1,asm:none,schedule:paper,guidance:cfg,strengths:[5.0]},"
            "{model:wan2.1,asm:none,schedule:paper,guidance:stg,strengths:[1.0]},"
            "{model:wan2.1,asm:none,schedule:paper,guidance:alg,strengths:[0.2]}]")
    assert reproduce("methods", [f"results_root={tmp_path}", grid], dry_run=True) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:-1]}
    assert list(rows) == ["omiti2v/wan2.1/scalar-paper-gamma1.5", "omiti2v/wan2.1/none-paper-cfg5.0",
                          "omiti2v/wan2.1/none-paper-stg1.0", "omiti2v/wan2.1/none-paper-alg0.2"]
    # CFG 5 through the adapter costs what the model's own CFG 5 costs: 2 forwards x 40 steps x 3.39 s
    assert "2 fwd x 40 calls x 3.39 s =  271.2 s/video" in rows["omiti2v/wan2.1/none-paper-cfg5.0"]
    assert "[true CFG: unconditional pass each step]" in rows["omiti2v/wan2.1/none-paper-cfg5.0"]
    assert "1.975 fwd" in rows["omiti2v/wan2.1/none-paper-stg1.0"] and "true CFG" not in rows["omiti2v/wan2.1/none-paper-stg1.0"]
    assert "2.2 fwd" in rows["omiti2v/wan2.1/none-paper-alg0.2"]  # 8 of 40 steps with three forwards
    _, runs = plan_runs("methods", [f"results_root={tmp_path}", grid], model="framepack")
    assert [r.refused is not None for r in runs] == [False, True, True, True]
    assert "FramePack samples with distilled guidance" in runs[1].refused
    commands = multirun_commands(runs, [])
    assert len(commands) == 1 and "asm=scalar" in commands[0]  # nothing refused is run
