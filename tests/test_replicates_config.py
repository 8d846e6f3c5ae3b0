"""`seeds=[...]` / `replicates=N`: what seed k means per model family, the folder names, the key checks and the
planned GPU-hours of N replicates."""

from pathlib import Path

import pytest

from omiti2v.config_check import config_violations
from omiti2v.reproduce import compose, plan_runs
from omiti2v.seeds import format_replicate_plan, replicate_config, replicate_hours_line, replicate_offsets


def test_seed_k_moves_the_models_own_seed_or_the_run_seed():
    wan = compose(["model=wan2.1", "seeds=[0,2]"])
    assert replicate_offsets(wan) == [0, 2]
    base = Path("/tmp/results/runs/omiti2v/wan2.1/scalar-paper")
    two = replicate_config(wan, 2, base)
    assert two.seed == 44 and two.model.seed is None and two.replicate == 2 and two.seeds is None
    assert two.run_name == "omiti2v/wan2.1/scalar-paper-seed2" and two.run_dir == f"{base}-seed2"
    framepack = replicate_config(compose(["model=framepack", "replicates=3"]), 1, base)
    assert framepack.model.seed == 31338 and framepack.seed == 42  # FramePack's fixed 31337 becomes 31337 + k
    zero = replicate_config(compose(["model=framepack", "replicates=3"]), 0, base)
    assert zero.model.seed == 31337 and zero.model.seed_mode == "fixed"  # seed 0 is the single paper run's seed
    assert replicate_offsets(compose(["replicates=3"])) == [0, 1, 2] and replicate_offsets(compose([])) is None


@pytest.mark.parametrize(("overrides", "message"), [
    (["seeds=[1,1]"], "each seed offset once"),
    (["seeds=[-1]"], "seed offsets >= 0"),
    (["replicates=0"], "whole number >= 1"),
    (["seeds=[0,1]", "replicates=2"], "both set"),
    (["seeds=[0,1]", "replicate=1"], "do not set it by hand"),
])
def test_bad_replicate_keys_get_one_line_each(overrides, message):
    problems = [p for p in config_violations(compose(overrides)) if "seed" in p or "replicate" in p]
    assert len(problems) == 1 and message in problems[0]


def test_planned_gpu_hours_of_n_replicates():
    _, plain = plan_runs("main")
    _, tripled = plan_runs("main", ["seeds=[0,1,2]"])
    for one, three in zip(plain, tripled, strict=True):
        if one.cost is not None:
            assert three.cost.gpu_hours == pytest.approx(3 * one.cost.gpu_hours) and three.cost.replicates == 3
    wan = compose(["model=wan2.1", "seeds=[0,1,2]"])
    assert "GPU-hours: 3 x 13.8 = 41.5" in format_replicate_plan(wan, [0, 1, 2])
    assert replicate_hours_line(wan, 2.5) == "x 3 seed replicates [0, 1, 2]: 7.50 GPU-hours (3 x 2.50)"
    assert replicate_hours_line(compose([]), 2.5) is None
