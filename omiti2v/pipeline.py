"""The eval chain: generate -> judge -> score -> report, each stage a function of (cfg, run, benchmark).

Stages are looked up by name in STAGES and imported lazily, so a stage's heavy dependencies load only when
it runs. Each stage is resumable on its own: it skips work whose results are already in the run directory.
"""

from __future__ import annotations

import functools
import importlib
import logging
import sys
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from .config_check import validate_config
from .data import Benchmark, load_benchmark
from .errors import SetupError
from .preflight import preflight
from .profile import profile_context
from .runs import RunDir, atomic_write_text, config_hash
from .summary import reported_judge_mode, write_summary

log = logging.getLogger(__name__)

STAGES: dict[str, str] = {
    "generate": "omiti2v.generate:run_generation",
    "judge": "omiti2v.judge:run_judge",
    "score": "omiti2v.scorers:run_scorers",
    "report": "omiti2v.pipeline:run_report",
}


class StageUnavailableError(RuntimeError):
    """A stage named in `stages` is not part of this installation."""


def resolve_stage(name: str):
    if name not in STAGES:
        raise ValueError(f"stages: unknown stage {name!r}; expected some of {list(STAGES)}")
    module_name, func = STAGES[name].split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (exc.name == module_name or module_name.startswith(exc.name + ".")):
            raise StageUnavailableError(f"stage {name!r} is not implemented yet ({module_name} is missing)") from exc
        raise
    return getattr(module, func)


def benchmark_from_config(data: DictConfig) -> Benchmark:
    return load_benchmark(
        source=data.source,
        root=data.get("root"),
        hf_id=data.get("hf_id") or "AIPeanutman/OmitI2V",
        revision=data.get("revision"),
        categories=data.get("categories"),
        domains=data.get("domains"),
        ids=data.get("ids"),
        limit=data.get("limit"),
    )


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
    """Run the named stages (default: cfg.stages) in order; stop with a clear message at a missing one.

    First the config is validated and the preflight checks what the stages need (`preflight=false` skips
    the latter), so a mistake ends the run before any model loads."""
    validate_config(cfg)
    stages = list(stages if stages is not None else cfg.stages)
    funcs = []
    for name in stages:
        try:
            funcs.append((name, resolve_stage(name)))
        except StageUnavailableError as exc:
            done = ", ".join(n for n, _ in funcs) or "none"
            log.warning("%s; running the stages before it (%s) and stopping there", exc, done)
            print(f"[omiti2v] {exc}. Stages run: {done}. Missing: {', '.join(stages[len(funcs):])}.")
            break
    from .generate import parallel

    path = run_path_from_config(cfg)
    ran = [n for n, _ in funcs]
    benchmark = preflight(cfg, ran, path) if cfg.get("preflight", True) else benchmark_from_config(cfg.data)
    layout = parallel.start(cfg, ran)  # after the checks: a bad config never waits in a process group
    run = RunDir(path)
    atomic_write_text(run.config, OmegaConf.to_yaml(cfg, resolve=True))
    for name, func in funcs:
        if name != "generate" and layout.world > 1:
            parallel.wait_for_all(layout)  # every rank's videos are in before anything reads them
            if layout.rank != 0:
                log.info("rank %d: generation done; the later stages run once, on rank 0", layout.rank)
                break
            layout = parallel.Layout()  # the rest runs on this process alone
        log.info("stage %s: %d samples -> %s", name, len(benchmark), run.path)
        func(cfg, run, benchmark)
    return run


def exit_on_setup_error(func):
    """Runner decorator: a SetupError ends the process with its message and exit code 2, no traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except SetupError as exc:
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(2)

    return wrapper


def summary_context(cfg: DictConfig) -> dict:
    """summary.json's identity, models, seeds and profile fields. A leaderboard submission (`submission.model`,
    set by `omiti2v submit`) brought its own videos: no generator, ASM or schedule of ours enters them."""
    resolved = OmegaConf.to_container(cfg, resolve=True)
    submitted = (cfg.get("submission") or {}).get("model")
    if submitted:
        run = {"model": submitted, "asm": "submission", "schedule": "submission"}
        hashed, generator, base_seed = ("data", "judge", "scorer", "seed"), f"submission:{submitted}", int(cfg.seed)
    else:
        run = {"model": cfg.model.name, "asm": cfg.asm.name, "schedule": cfg.schedule.name,
               "variant": str(cfg.get("variant") or ""),
               "compile": str((cfg.get("generation") or {}).get("compile") or "none")}
        hashed = ("data", "model", "asm", "schedule", "judge", "scorer", "seed")
        weights = cfg.model.get("weights")
        generator = cfg.model.get("checkpoint") if weights == "pretrained" else f"{weights}:{cfg.model.name}"
        # A model's own seed (FramePack's 31337) is the base the generation stage derives sample seeds from.
        base_seed = int(cfg.model.get("seed") or cfg.seed)
    smoke = bool(cfg.get("smoke", False))
    return {
        "run": {"name": cfg.run_name, "data": cfg.data.name, **run,
                "config_hash": config_hash({k: resolved[k] for k in hashed})},
        "smoke": smoke,
        "comparable": not smoke,
        "notes": list(cfg.get("notes") or []),
        "models": {"generator": generator, "judge": cfg.judge.get("model")},
        "seeds": {"base": base_seed},
        **profile_context(cfg, generation=not submitted),
    }


def run_report(cfg: DictConfig, run: RunDir, benchmark: Benchmark) -> dict:
    """Write samples.csv and summary.json (validated against the schema) and print the headline numbers."""
    summary = write_summary(run, benchmark, summary_context(cfg), reported_judge_mode(cfg.judge.get("mode")),
                            seed=int(cfg.seed))
    print(format_summary(summary))
    return summary


def format_summary(summary: dict) -> str:
    lines = [f"run {summary['run']['name']}  ({summary['benchmark']['n_samples']} samples, {summary['benchmark']['hash'][:19]})"]
    if summary["smoke"]:
        lines.append("SMOKE RUN: tiny random-weight models, the numbers below are meaningless")
    for key, cell in summary["metrics"].items():
        ci = cell["ci95"]
        value = "n/a" if cell["value"] is None else f"{cell['value']:6.2f}"
        lines.append(f"  {key:18s} {value}  n={cell['n']:<4d}" + (f" CI95 [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else ""))
    failures = summary["failures"]
    for stage, ids in [("generation", failures["generation"]), ("judge", failures["judge"]),
                       *((f"score {metric}", ids) for metric, ids in failures["scores"].items())]:
        if ids:
            lines.append(f"  failed ({stage}): {', '.join(ids)}")
    return "\n".join(lines)
