"""`hydra/launcher=slurm` where it cannot submit (no sbatch/srun, no hydra-submitit-launcher, no -m) stops with
one `error:` line and exit code 2 before anything is submitted or built: the real commands, PATH without Slurm."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from omiti2v.config_check import launcher_problem

REPO = Path(__file__).resolve().parents[1]
VENV = Path(sys.executable).parents[1]
OFF_CLUSTER = "error: hydra/launcher=slurm: no `sbatch` or `srun` on PATH, so this machine is not a Slurm cluster"


def run_without_slurm(command: list[str], tmp_path: Path, pythonpath: str = str(REPO)) -> subprocess.CompletedProcess:
    """`command` in the repo with a PATH holding only python's folder and `make`, so no sbatch/srun."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "make").symlink_to(shutil.which("make"))
    env = {**os.environ, "PATH": f"{bin_dir}:{Path(sys.executable).parent}", "PYTHONPATH": pythonpath,
           "OMITI2V_RESULTS": str(tmp_path / "results"), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    for key in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS"):  # under `make test`
        env.pop(key, None)
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def assert_one_error_line(proc: subprocess.CompletedProcess, start: str) -> None:
    lines = [line for line in proc.stderr.strip().splitlines() if not line.startswith("make: ***")]  # make's own
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith(start), proc.stderr
    assert "drop hydra/launcher=slurm" in lines[0] and "Traceback" not in proc.stdout + proc.stderr


@pytest.mark.parametrize("command", [
    [sys.executable, "runners/eval.py", "-m", "--config-name", "smoke", "hydra/launcher=slurm"],
    ["make", "eval", "MODEL=wan2.1", "ARGS=hydra/launcher=slurm", f"VENV={VENV}", "STAMP="],
    [sys.executable, "runners/reproduce.py", "--table", "modulation", "hydra/launcher=slurm"],
], ids=["multirun", "make-eval", "reproduce"])
def test_slurm_launcher_off_a_cluster_is_one_line(command, tmp_path):
    proc = run_without_slurm(command, tmp_path)
    assert_one_error_line(proc, OFF_CLUSTER)
    assert "make reproduce TABLE" not in proc.stdout  # reproduce stops before its plan
    assert not (tmp_path / "results").exists()  # nothing submitted, no run folder


def test_slurm_launcher_without_its_plugin_is_one_line(tmp_path):
    shadow = tmp_path / "no-plugins" / "hydra_plugins"  # a plain package hides the installed plugins
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("")
    proc = run_without_slurm([sys.executable, "runners/reproduce.py", "--table", "main", "hydra/launcher=slurm"],
                             tmp_path, pythonpath=f"{shadow.parent}:{REPO}")
    assert_one_error_line(proc, "error: hydra/launcher=slurm needs hydra-submitit-launcher, which is not installed")


def test_on_a_cluster_slurm_submits_a_multirun_only(tmp_path, monkeypatch):
    for command in ("sbatch", "srun"):
        (tmp_path / command).write_text("#!/bin/sh\n")
        (tmp_path / command).chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    slurm = {"hydra/launcher": "slurm"}
    assert launcher_problem(slurm, multirun=True) is None
    assert "submits only a multirun: add -m" in launcher_problem(slurm, multirun=False)
    assert launcher_problem({"hydra/launcher": "basic"}, multirun=False) is None
