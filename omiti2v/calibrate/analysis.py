"""Attention analysis: entropy per block x step with and without ASM (several gamma) and input blur, and
attention maps of chosen query tokens over the input image.

For every sample, input (plain / blurred, `omiti2v.asm.blur_input_image`) and gamma, the pipeline runs the
analysed steps with the same seed; an `EntropyProbe` (strided query sample, chunked) records the entropy at
the preset's ASM sites and a `ForegroundProbe` records the chosen tokens' attention over the image tokens.
gamma = 1 is the unmodulated model; otherwise ASM is the preset's recipe with both of its factors set to gamma
(Wan2.1: image branch x gamma, text branch x gamma^2) on `blocks` in every analysed step. Outputs in `out_dir`:

    entropy.jsonl           rows: sample_id, blur, gamma, site, block, timestep, entropy, normalized_entropy
    entropy_vs_gamma.png    mean normalized entropy vs gamma per site, plain and blurred input
    entropy_heatmap.png     normalized entropy, blocks x steps, at the smallest and largest gamma (plain input)
    attention_maps.png      chosen tokens' attention over the input image (mean over blocks, first step), per gamma
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from omiti2v.asm import ASMConfig, EntropyProbe, apply_asm
from omiti2v.asm.config import resolve_window
from omiti2v.calibrate.calibration import block_step_matrix, choose_samples, sample_inputs
from omiti2v.calibrate.probe import ForegroundProbe
from omiti2v.data import Sample
from omiti2v.runs import atomic_write_text

DEFAULT_BLUR = {"radius": 1, "short_side": 512}  # the official FramePack script's pilot blur (AlignVid repo)


@dataclass(frozen=True)
class AnalysisConfig:
    samples: int = 2
    gammas: tuple[float, ...] = (1.0, 1.35, 1.8, 2.5)
    blur: tuple[bool, ...] = (False, True)
    blocks: str | tuple[int, ...] = "all"
    steps: int | None = None
    window: str = "early"
    sites: tuple[str, ...] | None = None  # None = the preset's ASM sites
    max_queries: int | None = 256
    tokens: tuple[tuple[float, float, float], ...] = ((0.5, 0.5, 0.5),)
    seed: int = 42

    def __post_init__(self) -> None:
        if not self.gammas or any(g <= 0 for g in self.gammas):
            raise ValueError(f"analysis gammas must be positive, got {self.gammas}")
        if any(len(t) != 3 for t in self.tokens):
            raise ValueError("analysis tokens are (frame, y, x) fractions in [0, 1]")


def asm_for_gamma(preset: str, gamma: float, blocks: str | Sequence[int] = "all") -> ASMConfig | None:
    """The preset's recipe with each of its factors set to `gamma`, in every step; None for gamma = 1."""
    if gamma == 1.0:
        return None
    base = ASMConfig.preset(preset)
    return ASMConfig.preset(preset, gamma_q=gamma if base.q_sites else 1.0, gamma_k=gamma if base.k_sites else 1.0,
                            blocks=blocks if isinstance(blocks, str) else tuple(blocks), window="all")


@dataclass
class AnalysisResult:
    records: list[dict[str, Any]]
    maps: dict[tuple[str, bool, float], dict[str, Any]]  # (sample, blur, gamma) -> map of the first step
    images: dict[tuple[str, bool], Any]


def run_analysis(pipe: Any, baseline: Any, settings: Mapping, samples: Sequence[Sample], config: AnalysisConfig,
                 out_dir: str | Path | None = None) -> AnalysisResult:
    preset = settings["asm_preset"]
    sites = config.sites or ASMConfig.preset(preset).sites
    window = "all" if config.steps is not None else config.window
    chosen = choose_samples(samples, config.samples, config.seed)
    records, maps, images = [], {}, {}
    runs = [(s, b, g) for s in chosen for b in config.blur for g in sorted(config.gammas)]
    for sample, blur, gamma in tqdm(runs, desc=f"analyze {settings['name']}", unit="run", dynamic_ncols=True):
        kwargs, image, mask = sample_inputs(pipe, baseline, settings, sample, config.seed, config.steps,
                                            config.window, blur=DEFAULT_BLUR if blur else None)
        images[(sample.id, blur)] = image
        asm = asm_for_gamma(preset, gamma, config.blocks)
        entropy = EntropyProbe(pipe, sites=sites, max_queries=config.max_queries)
        attention = ForegroundProbe(pipe, max_queries=config.max_queries, window=window, track_queries=config.tokens)
        attention.set_sample(sample.id, mask)
        with torch.inference_mode(), apply_asm(pipe, asm or ASMConfig(strategy="none")), entropy, attention:
            pipe(**kwargs)
        lo, hi = resolve_window(window)
        for row in entropy.records():
            if lo < row["timestep"] <= hi:
                records.append({"sample_id": sample.id, "blur": blur, "gamma": gamma, **row})
        first = {}
        for (_, _, _, t), entry in attention.attention_maps().items():
            first.setdefault(t, []).append(entry)
        if first:
            step = max(first)
            maps[(sample.id, blur, gamma)] = {"maps": np.mean([e["maps"] for e in first[step]], axis=0),
                                              "square_crop": first[step][0]["square_crop"], "timestep": step,
                                              "site": attention.site}
    result = AnalysisResult(records, maps, images)
    if out_dir:
        write_outputs(result, config, Path(out_dir))
    return result


def entropy_curves(records: Sequence[Mapping], column: str = "normalized_entropy") -> dict[str, tuple[list, list]]:
    """Per (site, blur): gammas and the mean of `column` over samples, blocks and steps."""
    groups: dict[tuple[str, bool], dict[float, list[float]]] = {}
    for r in records:
        groups.setdefault((r["site"], bool(r["blur"])), {}).setdefault(float(r["gamma"]), []).append(float(r[column]))
    curves = {}
    for (site, blur), by_gamma in sorted(groups.items()):
        gammas = sorted(by_gamma)
        curves[f"{site}{' (blurred input)' if blur else ''}"] = (gammas, [float(np.mean(by_gamma[g])) for g in gammas])
    return curves


def write_outputs(result: AnalysisResult, config: AnalysisConfig, out_dir: Path) -> None:
    from omiti2v.calibrate.plots import attention_overlays, block_step_heatmap, entropy_vs_gamma

    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "entropy.jsonl", "".join(json.dumps(r, allow_nan=False) + "\n" for r in result.records))
    entropy_vs_gamma(entropy_curves(result.records), out_dir / "entropy_vs_gamma.png")
    plain = [r for r in result.records if not r["blur"]] or list(result.records)
    gammas = sorted({r["gamma"] for r in plain})
    site = sorted({r["site"] for r in plain})[0]
    matrices, columns, blocks = [], [], None
    for gamma in dict.fromkeys([gammas[0], gammas[-1]]):
        rows = [r for r in plain if r["gamma"] == gamma and r["site"] == site]
        blocks, steps, matrix = block_step_matrix(rows, "normalized_entropy")
        matrices.append(matrix)
        columns += [f"g={gamma:g} t={t:g}" for t in steps]
    block_step_heatmap(np.concatenate(matrices, axis=1), blocks, columns, out_dir / "entropy_heatmap.png",
                       title=f"normalized entropy, {site} attention", label="H / log N", xlabel="gamma, timestep")
    for (sample_id, blur) in [k for k in result.images if not k[1]][:1]:
        grid = []
        for token_index, point in enumerate(config.tokens):
            row = []
            for gamma in sorted(config.gammas):
                entry = result.maps.get((sample_id, blur, gamma))
                if entry is None:
                    continue
                row.append({"map": entry["maps"][token_index], "square_crop": entry["square_crop"],
                            "point": (point[1], point[2]),
                            "title": f"{sample_id} token {tuple(point)}\n"
                                     f"{entry['site']} g={gamma:g} t={entry['timestep']:g}"})
            if row:
                grid.append(row)
        if grid:
            attention_overlays(result.images[(sample_id, blur)], grid, out_dir / "attention_maps.png")
