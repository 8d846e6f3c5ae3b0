"""The composed config is checked before anything loads: every wrong value of a known key gets one line, the
runner exits 2 before a model is built, valid configs and keys the checker does not know pass."""

import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from omiti2v.config_check import ConfigError, config_violations, validate_config

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"


def violations(*overrides: str, config: str = "config") -> list[str]:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return config_violations(compose(config, overrides=["device=cpu", *overrides]))


@pytest.mark.parametrize(("override", "line"), [
    ("asm.strategy=foo", "asm.strategy 'foo' is not one of scalar|energy|blur_key|none"),
    ("asm.gamma_q=abc", "asm.gamma_q 'abc' is not a number > 0 or null"),
    ("asm.gamma_k=0", "asm.gamma_k 0 must be a number > 0 or null"),
    ("schedule.window=earlyy", "schedule.window 'earlyy' is not one of early|mid|late|all or [t_lo, t_hi]"),
    ("schedule.window=[900,100]", "schedule.window [900, 100] is not one of early|mid|late|all or [t_lo, t_hi] with t_lo < t_hi"),
    ("data.limit=-1", "data.limit -1 must be an integer >= 1 or null"),
    ("data.limit=0", "data.limit 0 must be an integer >= 1 or null"),
    ("data.categories=[delete]", "data.categories: 'delete' not in modification|addition|deletion"),
    ("generation.compile=max", "generation.compile 'max' is not one of none|regional"),
    ("judge.mode=fastest", "judge.mode 'fastest' is not one of official|parity|fast|both"),
    ("model.weights=huge", "model.weights 'huge' is not one of pretrained|random|tiny"),
    ("device=gpu", "device 'gpu' is not one of auto|cpu|cuda|cuda:N"),
    ("stages=[generate,jugde]", "stages: 'jugde' not in generate|judge|score|summary"),
    ("scorer.metrics=[dynamic_degree,beauty]", "scorer.metrics: 'beauty' not in aesthetic_quality|copy_index|dynamic_degree|i2v_background|"
                                                  "i2v_subject|imaging_quality"),
    ("shard=3/2", "shard: need 0 <= rank < world, got rank=3 world=2"),
    ("model.weights=tiny", "model.weights=tiny needs the toy sizes of model=wan2.1-tiny; use model=wan2.1-tiny "
                           "(or `make eval MODEL=wan2.1-tiny`)"),
])
def test_each_wrong_value_is_one_named_line(override, line):
    assert violations(override) == [line]


def test_local_data_without_root_and_calibrated_schedule_before_calibrating(monkeypatch, tmp_path):
    monkeypatch.delenv("OMITI2V_DATA", raising=False)
    assert violations("data=local", "schedule=calibrated", f"results_root={tmp_path}") == [
        "data.root is required with data=local (or set OMITI2V_DATA)",
        f"schedule=calibrated: no calibration file at {tmp_path}/calibration/wan2.1/blocks.yaml "
        "(schedule.calibration_file); run `omiti2v calibrate --model wan2.1` first",
    ]
    monkeypatch.setenv("OMITI2V_DATA", str(tmp_path))
    assert violations("data=local") == []


def test_cuda_without_a_gpu_is_a_named_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=["device=cuda:1"])
    with pytest.raises(ConfigError) as err:
        validate_config(cfg)
    assert err.value.violations == ["device=cuda:1: no CUDA GPU is visible on this machine; use device=cpu or device=auto"]


def test_every_shipped_config_and_unknown_keys_pass():
    schedules = [p.stem for p in (CONF / "schedule").glob("*.yaml") if p.stem != "calibrated"]
    models = [p.stem for p in (CONF / "model").glob("*.yaml")]
    asms = [p.stem for p in (CONF / "asm").glob("*.yaml")]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        # every option of each group once (the checker reads each group's keys on their own)
        for model, asm, schedule in itertools.zip_longest(models, asms, schedules):
            overrides = [f"{g}={v}" for g, v in (("model", model), ("asm", asm), ("schedule", schedule)) if v]
            assert config_violations(compose("config", overrides=[*overrides, "device=cpu"])) == [], overrides
        for judge, scorer in itertools.product(*([p.stem for p in (CONF / g).glob("*.yaml")] for g in ("judge", "scorer"))):
            assert config_violations(compose("config", overrides=[f"judge={judge}", f"scorer={scorer}"])) == []
    # keys other branches add (or a future group) are not this checker's business
    assert violations("+judge.batch_samples_mode=auto", "+profile.name=fast", "+claims.max_delta=3",
                      "+model.teacache.enabled=true", config="smoke") == []


def test_runner_prints_every_violation_and_exits_2_before_building_anything(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, str(REPO / "runners" / "eval.py"), f"results_root={tmp_path}", "model=wan2.1",
         "asm.strategy=foo", "data.limit=-1", "schedule.window=earlyy", "device=cpu"],
        capture_output=True, text=True, cwd=REPO, timeout=300, env=env,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert errors == ["error: data.limit -1 must be an integer >= 1 or null",
                      "error: asm.strategy 'foo' is not one of scalar|energy|blur_key|none",
                      "error: schedule.window 'earlyy' is not one of early|mid|late|all or [t_lo, t_hi]"]
    assert "Traceback" not in proc.stderr and "built wan2.1" not in proc.stdout + proc.stderr
    run = tmp_path / "runs" / "omiti2v" / "wan2.1" / "scalar-paper"  # Hydra itself only made its log folder
    assert sorted(p.name for p in run.iterdir()) == [".hydra-logs"]
