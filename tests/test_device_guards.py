"""Commands that need a GPU say so in one line (exit 2) when none is visible; the planner prints its header and
rows once; every --device option explains its values."""

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from omiti2v.cli import build_parser, main
from omiti2v.errors import SetupError
from omiti2v.generate.planner import plan_config

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("script", "args"), [
    ("judge_throughput.py", []), ("scorer_throughput.py", []), ("gpu_dry_run.py", ["plan", "out.jsonl", "model=wan2.1"]),
])
def test_gpu_benchmarks_refuse_in_one_line_without_a_gpu(script, args, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stdout[-1000:] + proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and f"benchmarks/{script} needs a CUDA GPU" in errors[0]
    assert "Traceback" not in proc.stderr and not list(tmp_path.iterdir())


def test_real_size_plan_on_a_cpu_is_one_line_before_building(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=["model=wan2.1", "asm=scalar"])
    with pytest.raises(SetupError) as err:
        plan_config(cfg)
    assert str(err.value).startswith("plan: a real-size wan2.1 build needs a CUDA GPU (device resolved to cpu); "
                                     "plan model=wan2.1-tiny on a CPU")


def test_omiti2v_plan_prints_header_and_rows_once(capsys):
    assert main(["plan", "--model", "wan2.1-tiny", "--asm", "none,scalar", "--device", "cpu", "plan.repeats=1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert sum(line.startswith("model ") for line in lines) == 1
    assert [line.split()[1] for line in lines if line.startswith("wan2.1-tiny ")] == ["none", "scalar"]
    assert lines[-1].startswith("hours per config: 367 samples")


def test_make_plan_sweep_prints_one_header(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMITI2V_RESULTS": str(tmp_path), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "runners/plan.py", "-m", "--config-name", "smoke",
                           "model=wan2.1-tiny", "asm=none,scalar", "device=cpu", "plan.repeats=1"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert sum(line.startswith("model ") for line in lines) == 1
    assert sum(line.startswith("hours per config") for line in lines) == 1
    assert [line.split()[1] for line in lines if line.startswith("wan2.1-tiny ")] == ["none", "scalar"]


def test_every_device_option_has_help():
    def device_actions(parser: argparse.ArgumentParser):
        for action in parser._actions:
            if "--device" in action.option_strings:
                yield action
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    yield from device_actions(sub)

    found = list(device_actions(build_parser()))
    assert len(found) >= 2 and all(a.help and "cpu" in a.help and "cuda" in a.help for a in found)
