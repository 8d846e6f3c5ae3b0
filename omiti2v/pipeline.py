"""The eval chain: the stages of omiti2v/stages.py run in order on one run folder, after the config check and
the preflight, with the process group of several GPUs joined and left around them."""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from .config_check import validate_config
from .data import benchmark_from_config
from .preflight import preflight
from .runs import RunDir, atomic_write_text
from .seeds import format_replicate_plan, replicate_config, replicate_offsets
from .stages import resolve_stage

log = logging.getLogger(__name__)


def run_path_from_config(cfg: DictConfig) -> Path:
    path = Path(cfg.run_dir)
    if not path.is_absolute():
        try:
            from hydra.utils import get_original_cwd

            path = Path(get_original_cwd()) / path
        except (ImportError, ValueError):  # outside a Hydra app: relative to the current folder
            path = path.resolve()
    return path


def run_stages(cfg: DictConfig, stages: list[str] | None = None) -> RunDir:
    """Run the named stages (default: cfg.stages) in order.

    First the config is validated and the preflight checks what the stages need (`preflight=false` skips
    the latter), so a mistake ends the run before any model loads. With `seeds=[...]` each replicate folder
    runs the stages in turn (omiti2v/seeds.py); the last one's RunDir is returned."""
    validate_config(cfg)
    if offsets := replicate_offsets(cfg):
        return run_replicates(cfg, offsets, stages)[-1]
    stages = list(stages if stages is not None else cfg.stages)
    path = run_path_from_config(cfg)
    benchmark = preflight(cfg, stages, path) if cfg.get("preflight", True) else benchmark_from_config(cfg.data)
    funcs = [(name, resolve_stage(name)) for name in stages]  # imported after the checks: they cost seconds
    from .context import RunContext
    from .generate import parallel

    ctx = RunContext.from_config(cfg)  # the run's settings, resolved once for every stage
    parallel.start(ctx.layout, ctx.parallel, stages)  # after the checks: a bad config never waits in a process group
    run = RunDir(path)
    atomic_write_text(run.config, OmegaConf.to_yaml(cfg, resolve=True))
    for name, func in funcs:
        if name != "generate" and ctx.layout.world > 1:
            parallel.wait_for_all(ctx.layout)  # every rank's videos are in before anything reads them
            if ctx.layout.rank != 0:
                log.info("rank %d: generation done; the later stages run once, on rank 0", ctx.layout.rank)
                break
            ctx = ctx.alone()
        log.info("stage %s: %d samples -> %s", name, len(benchmark), run.path)
        func(ctx, run, benchmark)
    return run


def run_replicates(cfg: DictConfig, offsets: list[int], stages: list[str] | None = None) -> list:
    """Every replicate's stages (default cfg.stages) in turn, each resuming what its folder holds, then the
    group summary when the summary stage ran; the replicates' RunDirs."""
    from .report.replicates import write_group_summary

    print(format_replicate_plan(cfg, offsets), flush=True)
    base = run_path_from_config(cfg)
    runs = [run_stages(replicate_config(cfg, k, base), stages) for k in offsets]
    if "summary" in list(stages if stages is not None else cfg.stages):
        written = write_group_summary([r.path for r in runs], seed=0)
        if written is not None:
            print(f"replicates: group summary {written}")
    return runs
