"""The run's settings resolved once, where the stages start (omiti2v.pipeline), and handed to every stage.

`RunContext.from_config` derives from the composed config what more than one stage, or one stage more than once,
would otherwise derive on its own: this process's multi-GPU layout and device, the model's settings and the base
seed of its samples, the judge's settings, the run and replicate seeds. Each stage (generate, judge, score,
summary; omiti2v/stages.py) is a function of (context, run folder, benchmark) and reads these fields; a group that
one stage alone reads (data, scorer, claims, asm, schedule, guidance) is read from `cfg` where it is used.
The context sits above the stages in the package's layering, so they take it without importing this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from omegaconf import DictConfig

from .devices import resolve_device
from .generate.parallel import Layout, parallel_settings, resolve_layout
from .judge.stage import JudgeSettings
from .models import Baseline, baseline_for
from .seeds import base_seed


@dataclass(frozen=True)
class RunContext:
    """One run's resolved settings. `baseline`, `model` and `base_seed` are None for a config without a model
    group, `judge` None for one without a judge group (the configs of one stage alone)."""

    cfg: DictConfig  # the composed config, read-only
    layout: Layout  # this process's rank, world and context-parallel group
    parallel: Mapping[str, Any]  # `cfg.parallel` with its defaults (parallel_settings)
    device: str  # `cfg.device` resolved for this process ("auto": this rank's GPU, else cpu)
    seed: int  # the run's `seed`; also the bootstrap seed of the summary's confidence intervals
    replicate: int | None  # this folder's seed-replicate offset (omiti2v/seeds.py), None for a plain run
    baseline: Baseline | None  # the model's registry entry
    model: Mapping[str, Any] | None  # the model's settings: conf/model/<name>.yaml overridden by `cfg.model`
    base_seed: int | None  # what every generated sample's seed derives from (omiti2v.seeds.base_seed)
    judge: JudgeSettings | None

    @classmethod
    def from_config(cls, cfg: DictConfig) -> RunContext:
        baseline = model = judge = None
        if cfg.get("model") is not None:
            baseline = baseline_for(cfg.model)
            model = baseline.settings(cfg.model)
        if cfg.get("judge") is not None:
            judge = JudgeSettings.from_config(cfg.judge)
        replicate = cfg.get("replicate")
        return cls(cfg=cfg, layout=resolve_layout(cfg), parallel=parallel_settings(cfg),
                   device=resolve_device(str(cfg.get("device") or "auto")), seed=int(cfg.get("seed", 0)),
                   replicate=None if replicate is None else int(replicate), baseline=baseline, model=model,
                   base_seed=None if model is None else base_seed(cfg, model), judge=judge)

    def alone(self) -> RunContext:
        """This context on this process alone: the stages after generation run once, on rank 0."""
        return replace(self, layout=Layout())
