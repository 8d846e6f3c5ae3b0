"""GPU-hours of a run from measured per-forward costs (omiti2v/generate/published_costs.yaml), no GPU needed.

The figures are the planner's measurements at real size (docs/performance.md); a run's estimate is
forwards per step (2 under classifier-free guidance, 1 without) x transformer calls per video x seconds per
forward x the ASM strategy's measured factor x samples. Models never measured give None.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources

import yaml

COSTS_FILE = "generate/published_costs.yaml"


@functools.cache
def published_costs() -> dict:
    return yaml.safe_load(resources.files("omiti2v").joinpath(COSTS_FILE).read_text(encoding="utf-8"))


@dataclass(frozen=True)
class RunCost:
    forwards_per_step: float
    calls_per_video: int
    seconds_per_forward: float
    asm_factor: float
    samples: int
    replicates: int = 1  # seed replicates of the run (`seeds=[...]`), each the full cost

    @property
    def seconds_per_video(self) -> float:
        return self.forwards_per_step * self.calls_per_video * self.seconds_per_forward * self.asm_factor

    @property
    def gpu_hours(self) -> float:
        return self.seconds_per_video * self.samples * self.replicates / 3600.0


def measured_entry(model_name: str) -> tuple[dict, str]:
    """(cost entry, source note) of a model config name (tiny variants are not in the table)."""
    models = published_costs()["models"]
    entry = models.get(model_name) or {}
    note = str(entry.get("source", "not measured"))
    while "same_as" in entry:
        entry = models[entry["same_as"]]
    return entry, note


def run_cost(model: Mapping, asm_strategy: str, samples: int, replicates: int = 1,
             forwards_per_step: float | None = None) -> RunCost | None:
    """The estimate for one run (its composed `model` config) and its `replicates` seeds, or None when the model
    was never measured. `forwards_per_step`: a guidance method's (omiti2v.guidance), in place of the model's own
    CFG."""
    entry, _ = measured_entry(str(model["name"]))
    if entry.get("seconds_per_forward") is None:
        return None
    sampling = model.get("sampling") or {}
    guided = float(sampling.get(entry["cfg_key"], 1.0) or 1.0) > 1.0
    return RunCost(
        forwards_per_step=forwards_per_step if forwards_per_step is not None else 2 if guided else 1,
        calls_per_video=int(entry["calls_per_video"]),
        seconds_per_forward=float(entry["seconds_per_forward"]),
        asm_factor=float((entry.get("asm_factor") or {}).get(asm_strategy, 1.0)),
        samples=samples,
        replicates=replicates,
    )


def seconds_per_step(model_name: str, forwards_per_step: float, asm_strategy: str = "none",
                     guidance_method: str = "none") -> tuple[float | None, str]:
    """(seconds per denoising step at real size on the published GPU, None when the model was never measured;
    a note saying what is assumed) for a run that makes `forwards_per_step` transformer forwards per step. A tiny
    variant costs as its full-size model. The guidance method's own overhead beyond its forwards (filters,
    projections, hooks) is its measured `guidance_factor`, 1 where none is published."""
    entry, _ = measured_entry(model_name.removesuffix("-tiny"))
    if entry.get("seconds_per_forward") is None:
        return None, "not measured"
    factors = entry.get("guidance_factor") or {}
    note = "" if guidance_method == "none" or guidance_method in factors else "guidance overhead assumed 1"
    seconds = (forwards_per_step * float(entry["seconds_per_forward"])
               * float((entry.get("asm_factor") or {}).get(asm_strategy, 1.0)) * float(factors.get(guidance_method, 1.0)))
    return seconds, note
