"""Calibration: choose a model's foreground-sensitive blocks from its own attention.

On K calibration samples, run the model's pipeline for the early denoising steps only (the steps ASM acts in),
with a `ForegroundProbe` at the site its ASM recipe modulates. A block's score is its foreground lift
(`omiti2v.calibrate.probe`) averaged over samples, steps, CFG passes, heads and queries. The block list is
then the blocks scoring at least `threshold`, else the `top_k` best, else the best `top_fraction` of all
blocks (default 0.7: the paper's Wan2.1 list keeps 28 of 40 blocks). Outputs in `out_dir`:

    scores.jsonl   per (sample, site, block, timestep) rows; samples already there are not run again
    blocks.yaml    the selected blocks (sorted ints, the preset form) + per-block scores; `schedule=calibrated`
    heatmap.png    foreground lift, blocks x steps (mean over samples), selected blocks marked
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from tqdm import tqdm

from omiti2v.asm.config import resolve_window
from omiti2v.asm.hooks import transformers_of
from omiti2v.asm.processors import find_attention_sites
from omiti2v.calibrate.probe import ForegroundProbe
from omiti2v.calibrate.saliency import foreground_mask, load_mask
from omiti2v.compat.diffusers import interrupt
from omiti2v.data import Sample
from omiti2v.paths import confined
from omiti2v.runs import append_jsonl, atomic_write_text, config_hash, read_jsonl, sample_seed

log = logging.getLogger(__name__)

SELECTION_RULES = ("threshold", "top_k", "top_fraction")


@dataclass(frozen=True)
class CalibrationConfig:
    """samples: K calibration samples (a seeded draw from the benchmark). steps: the first N denoising steps,
    or None for the steps inside `window`. site: attention site to score (None = the family's ASM site).
    Selection: `threshold` if set, else `top_k` if set, else `top_fraction` of the blocks."""

    samples: int = 8
    steps: int | None = None
    window: str = "early"
    site: str | None = None
    max_queries: int | None = 1024
    threshold: float | None = None
    top_k: int | None = None
    top_fraction: float = 0.7
    seed: int = 42
    mask_dir: str | None = None

    def __post_init__(self) -> None:
        if self.samples < 1:
            raise ValueError("calibration samples must be >= 1")
        if self.steps is not None and self.steps < 1:
            raise ValueError("calibration steps must be >= 1 (or None for the window's steps)")
        resolve_window(self.window)
        if self.top_k is not None and self.top_k < 1:
            raise ValueError("calibration top_k must be >= 1")
        if not 0 < self.top_fraction <= 1:
            raise ValueError("calibration top_fraction must be in (0, 1]")

    @property
    def selection(self) -> dict[str, Any]:
        if self.threshold is not None:
            return {"rule": "threshold", "value": float(self.threshold)}
        if self.top_k is not None:
            return {"rule": "top_k", "value": int(self.top_k)}
        return {"rule": "top_fraction", "value": float(self.top_fraction)}

    def measurement_hash(self, model_settings: Mapping) -> str:
        """Hash of what determines the per-sample scores (not the selection rule): reuse rows only if equal."""
        fields = {k: v for k, v in asdict(self).items() if k not in ("threshold", "top_k", "top_fraction", "samples")}
        return config_hash({"calibration": fields, "model": dict(model_settings)})


@dataclass
class CalibrationResult:
    model: str
    preset: str
    site: str
    num_blocks: int
    records: list[dict[str, Any]]
    block_scores: dict[int, float]
    blocks: list[int]
    selection: dict[str, Any]
    samples: list[str] = field(default_factory=list)

    def scores_by_step(self) -> tuple[list[int], list[float], np.ndarray]:
        """(blocks, timesteps in decreasing order, mean lift array (blocks, steps)) over samples."""
        return block_step_matrix(self.records, "foreground_lift", self.num_blocks)


def block_step_matrix(records: Sequence[Mapping], column: str, num_blocks: int | None = None
                      ) -> tuple[list[int], list[float], np.ndarray]:
    """Mean of `column` per (block, timestep) over the other keys; NaN where no row exists."""
    blocks = sorted({int(r["block"]) for r in records} | set(range(num_blocks or 0)))
    steps = sorted({float(r["timestep"]) for r in records}, reverse=True)
    sums = np.zeros((len(blocks), len(steps)))
    counts = np.zeros_like(sums)
    for r in records:
        value = float(r[column])
        if math.isfinite(value):
            i, j = blocks.index(int(r["block"])), steps.index(float(r["timestep"]))
            sums[i, j] += value
            counts[i, j] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        return blocks, steps, np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def choose_samples(samples: Sequence[Sample], k: int, seed: int) -> list[Sample]:
    """K samples drawn with a seed (all of them when there are fewer), in benchmark order."""
    if k >= len(samples):
        return list(samples)
    picked = set(np.random.default_rng(seed).choice(len(samples), size=k, replace=False).tolist())
    return [s for i, s in enumerate(samples) if i in picked]


def block_scores(records: Sequence[Mapping]) -> dict[int, float]:
    """Per block: mean foreground lift over samples and steps (each (sample, step) row weighs the same)."""
    values: dict[int, list[float]] = {}
    for r in records:
        if math.isfinite(float(r["foreground_lift"])):
            values.setdefault(int(r["block"]), []).append(float(r["foreground_lift"]))
    return {b: float(np.mean(v)) for b, v in sorted(values.items())}


def select_blocks(scores: Mapping[int, float], num_blocks: int, threshold: float | None = None,
                  top_k: int | None = None, top_fraction: float = 0.7) -> list[int]:
    """Selected block indices, sorted and unique (see the module docstring for the rule). Ties: lower index."""
    valid = {int(b): float(s) for b, s in scores.items() if math.isfinite(float(s)) and 0 <= int(b) < num_blocks}
    if not valid:
        raise ValueError("no block has a finite foreground score; nothing to select")
    if threshold is not None:
        chosen = [b for b, s in valid.items() if s >= threshold]
        if not chosen:
            raise ValueError(f"no block reaches the threshold {threshold} (best: {max(valid.values()):.4f})")
        return sorted(chosen)
    k = top_k if top_k is not None else max(1, round(top_fraction * num_blocks))
    ranked = sorted(valid, key=lambda b: (-valid[b], b))
    return sorted(ranked[:k])


def count_blocks(transformer: torch.nn.Module, site: str) -> int:
    blocks = [s.block for s in find_attention_sites(transformer) if site in s.sites]
    if not blocks:
        raise ValueError(f"{type(transformer).__name__} has no {site!r} attention")
    return max(blocks) + 1


class _StopAfterSteps:
    """callback_on_step_end that interrupts the pipeline once the analysed steps are done (rest skipped)."""

    def __init__(self, steps: int | None, window: str):
        self.steps = steps
        self.window = resolve_window(window)
        self.done = 0

    def __call__(self, pipe: Any, step: int, timestep: Any, callback_kwargs: dict) -> dict:
        self.done += 1
        if self.steps is not None:
            stop = self.done >= self.steps
        else:
            timesteps = pipe.scheduler.timesteps
            stop = step + 1 >= len(timesteps) or not self.window[0] < float(timesteps[step + 1]) <= self.window[1]
        if stop:
            interrupt(pipe)
        return callback_kwargs


def sample_inputs(pipe: Any, baseline: Any, settings: Mapping, sample: Sample, seed: int,
                  steps: int | None, window: str, blur: Mapping | None = None,
                  mask_dir: str | None = None) -> tuple[dict, Any, np.ndarray]:
    """(pipeline kwargs stopping after the analysed steps, the image the model sees, its foreground mask)."""
    image = sample.load_image()
    if blur:
        from omiti2v.asm import blur_input_image

        image = blur_input_image(image, **blur)
    image, height, width = baseline.prepare_image(image, settings)
    mask_path = confined(mask_dir, f"{sample.id}.png") if mask_dir else None
    if mask_path is not None and mask_path.exists():
        mask = load_mask(mask_path, image.size)
    else:
        mask = foreground_mask(image)
    kwargs = baseline.call_kwargs(pipe, image, sample.prompt, height, width, settings)
    kwargs.update(output_type="latent", generator=torch.Generator("cpu").manual_seed(sample_seed(seed, sample.id)),
                  callback_on_step_end=_StopAfterSteps(steps, window))
    return kwargs, image, mask


def run_calibration(pipe: Any, baseline: Any, settings: Mapping, samples: Sequence[Sample],
                    config: CalibrationConfig, out_dir: str | Path | None = None) -> CalibrationResult:
    """Score every block on `config.samples` of `samples`; write the outputs when `out_dir` is given."""
    chosen = choose_samples(samples, config.samples, config.seed)
    measurement = config.measurement_hash(settings)
    scores_path = Path(out_dir) / "scores.jsonl" if out_dir else None
    records = [r for r in (read_jsonl(scores_path) if scores_path and scores_path.exists() else [])
               if r.get("measurement") == measurement and r["sample_id"] in {s.id for s in chosen}]
    done = {r["sample_id"] for r in records}
    window = "all" if config.steps is not None else config.window
    probe = ForegroundProbe(pipe, site=config.site, max_queries=config.max_queries, window=window)
    with probe:
        transformer = transformers_of(pipe)[0]
        num_blocks = count_blocks(transformer, probe.site)
        for sample in tqdm([s for s in chosen if s.id not in done], desc=f"calibrate {settings['name']}",
                           unit="sample", dynamic_ncols=True):
            kwargs, _, mask = sample_inputs(pipe, baseline, settings, sample, config.seed, config.steps,
                                            config.window, mask_dir=config.mask_dir)
            probe.reset()
            probe.set_sample(sample.id, mask)
            with torch.inference_mode():
                pipe(**kwargs)
            rows = [{**r, "measurement": measurement} for r in probe.records()]
            if not rows:
                raise RuntimeError(f"sample {sample.id}: no attention call was scored (window {config.window!r}, "
                                   f"steps {config.steps}); the pipeline's first timestep may lie outside the window")
            if scores_path:
                append_jsonl(scores_path, rows)
            records.extend(rows)
    scores = block_scores(records)
    sel = config.selection
    blocks = select_blocks(scores, num_blocks, **({sel["rule"]: sel["value"]}))
    result = CalibrationResult(model=settings["name"], preset=settings["asm_preset"], site=probe.site,
                               num_blocks=num_blocks, records=records, block_scores=scores, blocks=blocks,
                               selection=sel, samples=[s.id for s in chosen])
    if out_dir:
        write_outputs(result, config, Path(out_dir))
    return result


def write_outputs(result: CalibrationResult, config: CalibrationConfig, out_dir: Path) -> None:
    from omiti2v.calibrate.plots import block_step_heatmap

    blocks, steps, matrix = result.scores_by_step()
    document = {
        "model": result.model, "preset": result.preset, "site": result.site, "num_blocks": result.num_blocks,
        "selection": result.selection, "blocks": result.blocks,
        "scores": {int(b): round(s, 6) for b, s in result.block_scores.items()},
        "samples": result.samples, "timesteps": steps,
        "settings": {k: v for k, v in asdict(config).items() if k not in ("threshold", "top_k", "top_fraction")},
    }
    header = (f"# Foreground-sensitive blocks of {result.model} from `omiti2v calibrate` ({result.site} attention, "
              f"{len(result.samples)} samples).\n# Use with `schedule=calibrated`; `blocks` is the preset form.\n")
    text = yaml.safe_dump(document, sort_keys=False, default_flow_style=None)
    atomic_write_text(out_dir / "blocks.yaml", header + text)
    block_step_heatmap(matrix, blocks, steps, out_dir / "heatmap.png", selected=result.blocks,
                       title=f"{result.model}: foreground lift ({result.site})", label="foreground lift")
