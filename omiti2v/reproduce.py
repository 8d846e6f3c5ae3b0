"""`make reproduce TABLE=main|modulation|schedule|methods`: every run one table needs, then the table.

conf/experiment/<table>.yaml lists the runs as sweeps (model x asm x schedule comma lists; optionally one
`guidance` method with its `strengths`, or ASM `gammas`, each gamma a run folder of its own, `variant=-gamma<g>`).
`model` (MODEL=) puts one model in every sweep; all-tiny models run on the smoke config (conf/smoke.yaml). A run
whose summary.json has no generation or judge failure is done and skipped; a run the config check refuses (a
guidance method its model cannot take) is listed with its reason and left out; the others go to omiti2v.eval
(what runners/eval.py runs) as one Hydra multirun per (asm, schedule, guidance, gamma), so extra arguments such
as `hydra/launcher=slurm` reach Hydra, and each stage resumes what the run folder already holds. Then `omiti2v
tables` (and `omiti2v plots` when the experiment names plots) builds the tables with the paper's numbers beside
ours. `dry_run` prints each run's status and GPU-hours (omiti2v.costs) and the total.
"""

from __future__ import annotations

import itertools
import json
import shlex
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig

from .config_check import exit_on_launcher_problem
from .costs import RunCost, measured_entry, published_costs, run_cost
from .paths import CONF_DIR
from .seeds import replicate_offsets

TABLES = tuple(sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml")))


@dataclass(frozen=True)
class PlannedRun:
    model: str
    asm: str
    schedule: str
    run_name: str
    run_dir: Path
    done: bool
    cost: RunCost | None
    cost_note: str
    guidance: str = "none"
    strength: float | None = None
    gamma: float | None = None
    true_cfg: bool = False          # runs the unconditional pass (two forwards per step or more)
    refused: str | None = None      # the config check's reason when the model cannot take this run


def compose(overrides: Sequence[str], with_hydra: bool = False, config_name: str = "config") -> DictConfig:
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra_compose(config_name, overrides=list(overrides), return_hydra_config=with_hydra)


def config_name_for(models: Sequence[str]) -> str:
    """The smoke config when every model is a tiny one (as `make eval` does), else the primary config."""
    return "smoke" if models and all(m.endswith("-tiny") for m in models) else "config"


def point_overrides(guidance: str, strength: float | None, gamma: float | None) -> list[str]:
    """The overrides a sweep point adds to model/asm/schedule."""
    out = [] if guidance == "none" else [f"guidance={guidance}"]
    if strength is not None:
        out.append(f"guidance.strength={float(strength)!r}")
    if gamma is not None:
        out += [f"asm.gamma_q={float(gamma)!r}", f"asm.gamma_k={float(gamma)!r}", f"variant=-gamma{float(gamma)!r}"]
    return out


def sweep_points(sweep, model: str | None) -> list[tuple]:
    """(model, asm, schedule, guidance, strength, gamma) of one sweep entry."""
    models = [model] if model else str(sweep["model"]).split(",")
    guidance = str(sweep.get("guidance") or "none")
    strengths = list(sweep.get("strengths") or [None])
    gammas = list(sweep.get("gammas") or [None])
    return list(itertools.product(models, str(sweep["asm"]).split(","), str(sweep["schedule"]).split(","),
                                  [guidance], strengths, gammas))


def config_overrides(args: Sequence[str]) -> list[str]:
    """The arguments that change a run's config: not Hydra's own (hydra/launcher=slurm, hydra.*), which only
    go to the multirun, nor `experiment.*`, which edit the experiment's list of runs."""
    return [a for a in args if not a.lstrip("+~").startswith(("hydra", "experiment."))]


def run_arguments(args: Sequence[str]) -> list[str]:
    """The arguments every multirun gets: all but `experiment.*`."""
    return [a for a in args if not a.lstrip("+~").startswith("experiment.")]


def is_done(run_dir: Path, samples: int | None = None) -> bool:
    """A summary without generation or judge failures, covering at least `samples` (the selection's size, when
    known): a folder where only a subset ran holds a summary of that subset, which is not the run."""
    path = run_dir / "summary.json"
    if not path.is_file():
        return False
    summary = json.loads(path.read_text(encoding="utf-8"))
    failures, covered = summary.get("failures", {}), (summary.get("benchmark") or {}).get("n_samples")
    return not failures.get("generation") and not failures.get("judge") and (
        samples is None or covered is None or covered >= samples)


def selection_size(cfg: DictConfig) -> int | None:
    """Samples the runs' data selection holds, None when the benchmark cannot be read here (a dry run offline)."""
    from .data import benchmark_from_config
    from .errors import SetupError

    try:
        return len(benchmark_from_config(cfg.data))
    except (SetupError, ValueError, OSError):
        return None


def plan_runs(table: str, args: Sequence[str] = (), model: str | None = None) -> tuple[DictConfig, list[PlannedRun]]:
    """The experiment's config and its runs, in the experiment's order, duplicates dropped; `model` replaces the
    models of every sweep."""
    from .guidance.check import guidance_violations

    if table not in TABLES:
        raise ValueError(f"TABLE={table!r}: expected one of {', '.join(TABLES)}")
    extra = config_overrides(args)
    edits = [a for a in args if a.lstrip("+~").startswith("experiment.")]
    config_name = config_name_for([model] if model else [])
    experiment = compose([f"+experiment={table}", *extra, *edits], config_name=config_name).experiment
    points = dict.fromkeys(point for sweep in experiment.sweeps for point in sweep_points(sweep, model))
    config_name = config_name_for([point[0] for point in points])
    runs, selected = [], {}
    for name, asm, schedule, guidance, strength, gamma in points:
        cfg = compose([f"model={name}", f"asm={asm}", f"schedule={schedule}",
                       *point_overrides(guidance, strength, gamma), *extra], config_name=config_name)
        run_dir = Path(cfg.run_dir)
        samples = int(cfg.data.get("limit") or cfg.plan.samples)
        forwards, true_cfg = guided_forwards(cfg)
        refused = next(iter(guidance_violations(cfg)), None)
        offsets = replicate_offsets(cfg) or []  # seeds=[...]: one folder per seed, each the full cost
        folders = [run_dir.with_name(f"{run_dir.name}-seed{k}") for k in offsets] or [run_dir]
        if "size" not in selected and any((f / "summary.json").is_file() for f in folders):
            selected["size"] = selection_size(cfg)  # every run selects the same data
        done = all(is_done(folder, selected.get("size")) for folder in folders)
        runs.append(PlannedRun(name, asm, schedule, str(cfg.run_name), run_dir, done,
                               run_cost(cfg.model, str(cfg.asm.strategy), samples, max(1, len(offsets)), forwards),
                               measured_entry(name)[1], guidance, strength, gamma, true_cfg, refused))
    return experiment, runs


def guided_forwards(cfg: DictConfig) -> tuple[float | None, bool]:
    """(forwards per step of the run's guidance method, None without one; whether it runs true CFG)."""
    from .guidance.config import GuidanceConfig, strength_problem

    guidance = cfg.get("guidance") or {}
    if guidance.get("method", "none") == "none" or strength_problem(guidance.method, guidance.get("strength")):
        return None, False
    from .guidance.methods import forwards_per_step
    from .guidance.run import run_guidance

    sampling = cfg.model.sampling
    config: GuidanceConfig = run_guidance(cfg, sampling)
    return forwards_per_step(config, int(sampling.num_inference_steps)), config.needs_unconditional


def format_plan(table: str, runs: Sequence[PlannedRun]) -> str:
    lines = [f"make reproduce TABLE={table}: {len(runs)} runs; GPU-hours on one {published_costs()['gpu']} "
             "(transformer only, omiti2v/generate/published_costs.yaml)"]
    for r in runs:
        status = "done   " if r.done else "pending"
        if r.refused:
            lines.append(f"  {r.run_name:48s} refused {r.refused}")
            continue
        if r.cost is None:
            cost = f"not measured (make plan MODEL={r.model})"
        else:
            c = r.cost
            cost = (f"{c.forwards_per_step:g} fwd x {c.calls_per_video} calls x {c.seconds_per_forward:.2f} s"
                    f"{'' if c.asm_factor == 1.0 else f' x {c.asm_factor:g}'} = {c.seconds_per_video:6.1f} s/video,"
                    f" {c.samples} samples{f' x {c.replicates} seeds' if c.replicates > 1 else ''}: {c.gpu_hours:6.1f} GPU-h")
            if "assumed" in r.cost_note:
                cost += " (assumed: see published_costs.yaml)"
        if r.true_cfg:
            cost += " [true CFG: unconditional pass each step]"
        lines.append(f"  {r.run_name:48s} {status} {cost}")
    runs = [r for r in runs if not r.refused]
    measured = [r for r in runs if r.cost is not None]
    pending = [r for r in measured if not r.done]
    unmeasured = len(runs) - len(measured)
    lines.append(f"total: {sum(r.cost.gpu_hours for r in measured):.1f} GPU-h for {len(measured)} measured runs "
                 f"({sum(r.cost.gpu_hours for r in pending):.1f} GPU-h still to run)"
                 + (f"; {unmeasured} runs not measured" if unmeasured else ""))
    return "\n".join(lines)


def multirun_commands(runs: Sequence[PlannedRun], args: Sequence[str]) -> list[list[str]]:
    """One `python -m omiti2v.eval -m` per (asm, schedule, gamma, models, strengths) of the pending runs, with
    models, guidance methods and guidance strengths as comma lists (Hydra sweeps their product, so only methods
    that share models and strengths share a command); tiny models on the smoke config."""
    points: dict[tuple, tuple[list[str], list[float]]] = {}
    for r in runs:
        if not r.done and not r.refused:
            key = (r.asm, r.schedule, r.guidance, r.gamma, r.strength is None)  # None: the method's own default
            models, strengths = points.setdefault(key, ([], []))
            models.extend([r.model] if r.model not in models else [])
            strengths.extend([r.strength] if r.strength is not None and r.strength not in strengths else [])
    groups: dict[tuple, list[str]] = {}
    for (asm, schedule, guidance, gamma, _), (models, strengths) in points.items():
        groups.setdefault((asm, schedule, gamma, tuple(models), tuple(strengths)), []).append(guidance)
    commands = []
    for (asm, schedule, gamma, models, strengths), methods in groups.items():
        config = config_name_for(models)
        overrides = [f"guidance={','.join(methods)}"] if methods != ["none"] else []
        overrides += point_overrides("none", None, gamma)
        if strengths:
            overrides.append("guidance.strength=" + ",".join(repr(float(v)) for v in strengths))
        commands.append([sys.executable, "-m", "omiti2v.eval", "-m", *(["--config-name", config] if config != "config" else []),
                         f"model={','.join(models)}", f"asm={asm}", f"schedule={schedule}", *overrides, *args])
    return commands


def reproduce(table: str, args: Sequence[str] = (), dry_run: bool = False, model: str | None = None) -> int:
    config_name = config_name_for([model] if model else [])
    if not dry_run:  # hydra/launcher=slurm off a cluster: one line before the plan, nothing submitted
        exit_on_launcher_problem(compose(run_arguments(args), with_hydra=True, config_name=config_name
                                         ).hydra.runtime.choices, multirun=True)
    experiment, runs = plan_runs(table, args, model)
    print(format_plan(table, runs), flush=True)
    if dry_run:
        return 0
    for command in multirun_commands(runs, run_arguments(args)):
        print("+", shlex.join(command), flush=True)  # runnable as printed
        code = subprocess.run(command).returncode
        if code:
            print(f"reproduce: the multirun above failed (exit {code}); fix it and rerun: finished runs are kept",
                  file=sys.stderr)
            return code
    cfg = compose(config_overrides(args), config_name=config_name)
    results = Path(cfg.results_root)
    for kind in ("tables", *(["plots"] if experiment.get("plots") else [])):
        subprocess.run([sys.executable, "-m", "omiti2v.cli", kind, "--runs", str(results / "runs"),
                        "--out", str(results / kind), "--data", str(cfg.data.name)], check=True)
    for name in experiment.tables:
        print((results / "tables" / str(cfg.data.name) / f"{name}.md").read_text(encoding="utf-8"))
    return 0
