"""The composed config is checked before anything loads: every wrong value and every key no config knows gets one
line, a runner's command line is read before Hydra starts (a misspelt group option, a comma list without -m, a
results root that cannot be written, the `-tiny` rule that picks the smoke config), the runner exits 2 before a
model is built, and valid configs pass."""

import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from omiti2v import config_check
from omiti2v.config_check import (
    RULE_OWNERS,
    ConfigError,
    compose_checked,
    config_violations,
    known_keys,
    override_problems,
    sweep_points,
    validate_config,
)
from omiti2v.eval import checked_command_line, hydra_arguments

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"


def violations(*overrides: str, config: str = "config") -> list[str]:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return config_violations(compose(config, overrides=["device=cpu", *overrides]))


@pytest.mark.parametrize(("override", "line"), [
    ("asm.strategy=foo", "asm.strategy 'foo' is not one of scalar|energy|blur_key|none"),
    ("asm.strategy=scaler", "asm.strategy 'scaler' is not one of scalar|energy|blur_key|none (did you mean scalar?)"),
    ("asm.gamma_q=abc", "asm.gamma_q 'abc' is not a number > 0 or null"),
    ("asm.gamma_k=0", "asm.gamma_k 0 must be a number > 0 or null"),
    ("schedule.window=earlyy", "schedule.window 'earlyy' is not one of early|mid|late|all or [t_lo, t_hi]"),
    ("schedule.window=[900,100]", "schedule.window [900, 100] is not one of early|mid|late|all or [t_lo, t_hi] with t_lo < t_hi"),
    ("data.limit=-1", "data.limit -1 must be an integer >= 1 or null"),
    ("data.limit=0", "data.limit 0 must be an integer >= 1 or null"),
    ("data.categories=[delete]", "data.categories: 'delete' not in modification|addition|deletion (did you mean deletion?)"),
    ("generation.compile=max", "generation.compile 'max' is not one of none|regional"),
    ("judge.mode=fastest", "judge.mode 'fastest' is not one of official|parity|fast|both (did you mean fast?)"),
    ("judge.batch_samples=-2", "judge.batch_samples -2 must be 'auto' or an integer >= 1"),
    ("judge.batch_samples=many", "judge.batch_samples 'many' is not 'auto' or an integer >= 1"),
    ("model.weights=huge", "model.weights 'huge' is not one of pretrained|random|tiny"),
    ("model.sampling.num_inference_steps=-5", "model.sampling.num_inference_steps -5 must be an integer >= 1"),
    ("model.sampling.num_frames=0", "model.sampling.num_frames 0 must be an integer >= 1"),
    ("model.sizing.mode=square", "model.sizing.mode 'square' is not one of max_area|bucket|hunyuan15_bucket|fixed"),
    ("device=gpu", "device 'gpu' is not one of auto|cpu|cuda|cuda:N"),
    ("variant=gq1.5", "variant 'gq1.5' is not '' or a suffix starting with '-' (e.g. variant=-gq1.5)"),
    ("variant=-a/b", "variant '-a/b': only letters, digits, '.', '_' and '-' may extend the run folder's name (no '/')"),
    ("stages=[generate,jugde]", "stages: 'jugde' not in generate|judge|score|summary (did you mean judge?)"),
    ("scorer.metrics=[dynamic_degree,beauty]", "scorer.metrics: 'beauty' not in aesthetic_quality|copy_index|dynamic_degree|"
                                                  "i2v_background|i2v_subject|imaging_quality"),
    ("shard=3/2", "shard: need 0 <= rank < world, got rank=3 world=2"),
    ("model.weights=tiny", "model.weights=tiny needs the toy sizes of model=wan2.1-tiny; use model=wan2.1-tiny "
                           "(or `make eval MODEL=wan2.1-tiny`)"),
    ("+asm.gama_q=1.5", "asm.gama_q: no such key (did you mean asm.gamma_q?)"),
    ("+judge.batch_samples_mode=auto", "judge.batch_samples_mode: no such key (did you mean judge.batch_samples?)"),
    ("+claims.max_delta=3", "claims.max_delta: no such key (the keys of claims: poll_s, stale_after_s)"),
])
def test_each_mistake_is_one_named_line(override, line):
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


def test_every_shipped_config_passes_and_values_below_an_open_key_are_free():
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
        for profile in ("paper", "leaderboard"):
            assert config_violations(compose("smoke", overrides=[f"profile={profile}", "+experiment=main"])) == []
    # `submission` is null in conf/config.yaml (a value): `omiti2v submit` hangs {model: NAME} below it; a key
    # only a rule declares (read with a default) is known too
    assert violations("+submission.model=mine", "+plan.teacache_computed_fraction=0.5", config="smoke") == []


def test_keys_come_from_the_yaml_and_the_rules_so_a_new_key_is_one_place():
    known = known_keys()
    assert known["model.sampling.num_frames"] is True and known["model"] is False  # a value; a mapping
    assert known["judge.missing_video"] and known["experiment.sweeps"]  # from `# @package _global_` files
    assert known["plan.teacache_computed_fraction"]  # declared by its rule only (generate/options.py)
    assert "asm.gama_q" not in known


def test_every_rule_has_one_owner_next_to_its_code():
    """An enum or range is written once: no key is declared by two modules, and the check itself declares only
    the run-level keys of conf/config.yaml."""
    owners = {name: RULE_OWNERS[name] for name in RULE_OWNERS}
    declared = [key for module in [config_check, *owners.values()] for key in getattr(module, "CONFIG_RULES", {})]
    assert len(declared) == len(set(declared))
    assert all("." not in key for key in config_check.CONFIG_RULES)
    assert {"model.baseline", "asm.strategy", "judge.mode", "scorer.metrics", "stages"} <= set(declared)


@pytest.mark.parametrize(("argv", "line"), [
    (["model=wan21-tiny"], "model: unknown value 'wan21-tiny'; did you mean wan2.1-tiny or wan2.2-tiny? "
                           "(options: conf/model/*.yaml)"),
    (["asm=scaler"], "asm: unknown value 'scaler'; did you mean scalar? (options: conf/asm/*.yaml)"),
    (["judge=qwen2.5-vl-32"], "judge: unknown value 'qwen2.5-vl-32'; did you mean qwen2.5-vl-32b or qwen2.5-vl-72b? "
                              "(options: conf/judge/*.yaml)"),
    (["model=wan2.1-tiny,framepack"], "model=wan2.1-tiny,framepack: a comma list is a sweep (one run per value) and "
                                      "needs -m (with make: ARGS=-m, or `make plan`); or give one value"),
    (["modle=wan2.1"], "modle: no such key or config group (did you mean model?)"),
    (["asm.gama_q=1.5"], "asm.gama_q: no such key (did you mean asm.gamma_q?)"),
    (["modle.sampling.num_frames=3"], "modle.sampling.num_frames: no such key 'modle' (did you mean model?)"),
])
def test_command_line_mistakes_are_one_line_before_hydra(argv, line):
    assert override_problems(argv) == [line]


def test_sweeps_need_m_and_each_point_is_checked():
    assert override_problems(["model=wan2.1-tiny,framepack-tiny"], multirun=True) == []
    assert sweep_points(["model=a,b", "asm=none,scalar", "hydra/launcher=slurm", "data.categories=[x,y]"]) == [
        ["model=a", "asm=none", "data.categories=[x,y]"], ["model=a", "asm=scalar", "data.categories=[x,y]"],
        ["model=b", "asm=none", "data.categories=[x,y]"], ["model=b", "asm=scalar", "data.categories=[x,y]"]]
    with pytest.raises(ConfigError, match="judge.batch_samples -2"):
        compose_checked(["judge.batch_samples=-2"], "smoke")


def test_runner_reads_its_command_line_as_hydra_does():
    """Hydra's own parser (a private module) still reads runner flags the way checked_command_line expects."""
    args = hydra_arguments(["-m", "--config-name", "smoke", "model=a,b", "x=1"])
    assert (args.multirun, args.config_name, args.overrides) == (True, "smoke", ["model=a,b", "x=1"])


def test_tiny_models_pick_the_smoke_config_in_the_runner_as_in_make(tmp_path):
    root = f"results_root={tmp_path}"
    assert checked_command_line(["model=wan2.1-tiny", root]) == ["--config-name", "smoke", "model=wan2.1-tiny", root]
    assert checked_command_line(["-m", "model=wan2.1-tiny,framepack-tiny", root])[:2] == ["--config-name", "smoke"]
    assert checked_command_line(["--config-name", "config", "model=wan2.1-tiny", root])[1] == "config"
    assert checked_command_line(["-m", "model=wan2.1,framepack-tiny", root]) == ["-m", "model=wan2.1,framepack-tiny", root]


@pytest.mark.parametrize("root", ["file", "/proc/self"])
def test_results_root_that_cannot_be_written_is_one_line(root, tmp_path, capsys):
    path = tmp_path / "file"
    path.write_text("")
    root = str(path) if root == "file" else root
    with pytest.raises(SystemExit) as exit_:
        checked_command_line(["model=wan2.1-tiny", f"results_root={root}"])
    assert exit_.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: results root {root} is ")


def test_runner_prints_every_violation_and_exits_2_before_hydra_starts(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, str(REPO / "runners" / "eval.py"), f"results_root={tmp_path}", "model=wan2.1",
         "asm.strategy=foo", "data.limit=-1", "schedule.window=earlyy", "device=cpu", "+asm.gama_q=1.5"],
        capture_output=True, text=True, cwd=REPO, timeout=300, env=env,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.splitlines() == ["error: data.limit -1 must be an integer >= 1 or null",
                                        "error: asm.strategy 'foo' is not one of scalar|energy|blur_key|none",
                                        "error: schedule.window 'earlyy' is not one of early|mid|late|all or [t_lo, t_hi]",
                                        "error: asm.gama_q: no such key (did you mean asm.gamma_q?)"]
    assert list(tmp_path.iterdir()) == []  # not even Hydra's log folder
