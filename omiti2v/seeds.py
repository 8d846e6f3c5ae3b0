"""Seed replicates of one configuration: `seeds=[0,1,2]` (or `replicates=3`) on the eval chain or any stage.

Replicate k is the same configuration with the generator's base seed moved by k: the model's own seed plus k
where it has one (FramePack and FramePack-F1: 31337 + k), else the run's `seed` plus k (Wan and the others:
42 + k by default). Replicate 0 therefore has exactly the single run's seeds, and under the paper profile's
`seed_mode: fixed` replicate k still uses one seed for every sample, as the official scripts do. Each replicate is
a sibling run folder `<run>-seed<k>` (its summary.json records `seeds.replicate: k`) that shares everything
else; after the last one, the group's replicates.json goes to `<run>-replicates/` (omiti2v/report/replicates.py).
The planned GPU-hours of all replicates are printed before anything runs (omiti2v.pipeline.run_replicates).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

REPLICATE_KEYS = ("seeds", "replicates")


def replicate_key_problems(cfg: DictConfig) -> list[str]:
    """One line per invalid `seeds` / `replicates` value (the config check calls this)."""
    seeds, count = OmegaConf.select(cfg, "seeds"), OmegaConf.select(cfg, "replicates")
    problems = []
    if seeds is not None:
        values = list(seeds) if isinstance(seeds, ListConfig | list | tuple) else None
        if not values or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values):
            problems.append(f"seeds {seeds!r}: expected a non-empty list of seed offsets >= 0, e.g. seeds=[0,1,2]")
        elif len(set(values)) != len(values):
            problems.append(f"seeds {values}: each seed offset once")
    if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 1):
        problems.append(f"replicates {count!r}: expected a whole number >= 1, e.g. replicates=3")
    if seeds is not None and count is not None:
        problems.append("seeds and replicates both set: give one (replicates=N means seeds=[0..N-1])")
    if (seeds is not None or count is not None) and OmegaConf.select(cfg, "replicate") is not None:
        problems.append("replicate is set for each replicate by seeds/replicates; do not set it by hand")
    return problems


config_problems = replicate_key_problems  # collected by omiti2v.config_check (its RULE_OWNERS)


def base_seed_key(model_settings: Mapping[str, Any]) -> str:
    """Where a run's base seed lives: the model's own `seed` when it has one (FramePack: 31337), else the run's
    `seed` (Wan and the others). `model_settings`: the model's settings (Baseline.settings)."""
    return "model.seed" if model_settings.get("seed") is not None else "seed"


def base_seed(cfg: Mapping[str, Any], model_settings: Mapping[str, Any]) -> int:
    """The base seed every generated sample's seed derives from (0 is a seed, not "unset"). Resolved once per run
    (omiti2v.context.RunContext.base_seed); every generation record carries it and the summary reads it back."""
    return int(model_settings["seed"] if base_seed_key(model_settings) == "model.seed" else cfg["seed"])


def replicate_offsets(cfg: DictConfig) -> list[int] | None:
    """The seed offsets asked for, None for a plain run."""
    if cfg.get("seeds") is not None:
        return [int(k) for k in cfg.seeds]
    if cfg.get("replicates") is not None:
        return list(range(int(cfg.replicates)))
    return None


def replicate_config(cfg: DictConfig, k: int, run_dir: Path) -> DictConfig:
    """The config of replicate k: the base seed moved by k, run folder and name suffixed `-seed<k>`."""
    from .models import baseline_for

    settings = baseline_for(cfg.model).settings(cfg.model)
    out = copy.deepcopy(cfg)
    with open_dict(out):
        name = str(cfg.run_name)
        for key in REPLICATE_KEYS:
            out[key] = None
        out.replicate = k
        OmegaConf.update(out, base_seed_key(settings), base_seed(cfg, settings) + k)
        out.run_name = f"{name}-seed{k}"
        out.run_dir = str(run_dir.with_name(f"{run_dir.name}-seed{k}"))
    return out


def format_replicate_plan(cfg: DictConfig, offsets: list[int]) -> str:
    """What `seeds=` will run and its GPU-hours (omiti2v/costs.py), before anything runs."""
    from .costs import run_cost

    samples = int(cfg.data.get("limit") or cfg.plan.samples)
    cost = run_cost(cfg.model, str(cfg.asm.get("strategy", "none")), samples, len(offsets))
    head = f"replicates: {len(offsets)} seed(s) {offsets} of {cfg.run_name} -> {cfg.run_name}-seed<k>"
    if cost is None:
        return f"{head}; GPU-hours not measured for model={cfg.model.name} (make plan MODEL={cfg.model.name})"
    return (f"{head}; GPU-hours: {len(offsets)} x {cost.gpu_hours / len(offsets):.1f} = {cost.gpu_hours:.1f} "
            f"({samples} samples each, omiti2v/generate/published_costs.yaml)")


def replicate_hours_line(cfg: DictConfig, hours_per_config: float) -> str | None:
    """`make plan` with seeds=[...]: the GPU-hours of every replicate, None for a plain run."""
    offsets = replicate_offsets(cfg)
    if not offsets:
        return None
    return (f"x {len(offsets)} seed replicates {offsets}: {len(offsets) * hours_per_config:.2f} GPU-hours "
            f"({len(offsets)} x {hours_per_config:.2f})")
