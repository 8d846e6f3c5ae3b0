"""`make reproduce TABLE=main|modulation|schedule`: every run one of the paper's tables needs, then the table.

conf/experiment/<table>.yaml lists the runs as sweeps (model x asm x schedule comma lists). A run whose
summary.json has no generation or judge failure is done and skipped; the others go to omiti2v.eval (what
runners/eval.py runs) as one Hydra multirun per (asm, schedule), so extra arguments such as `hydra/launcher=slurm` reach Hydra, and each
stage resumes what the run folder already holds. Then `omiti2v tables` builds the tables with the paper's
numbers beside ours. `dry_run` prints each run's status and GPU-hours (omiti2v.costs) and the total.
"""

from __future__ import annotations

import itertools
import json
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


def compose(overrides: Sequence[str], with_hydra: bool = False) -> DictConfig:
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra_compose("config", overrides=list(overrides), return_hydra_config=with_hydra)


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


def plan_runs(table: str, args: Sequence[str] = ()) -> tuple[DictConfig, list[PlannedRun]]:
    """The experiment's config and its runs, in the experiment's order, duplicates dropped."""
    if table not in TABLES:
        raise ValueError(f"TABLE={table!r}: expected one of {', '.join(TABLES)}")
    extra = config_overrides(args)
    edits = [a for a in args if a.lstrip("+~").startswith("experiment.")]
    experiment = compose([f"+experiment={table}", *extra, *edits]).experiment
    points = dict.fromkeys(
        (m, a, s)
        for sweep in experiment.sweeps
        for m, a, s in itertools.product(*(str(sweep[k]).split(",") for k in ("model", "asm", "schedule")))
    )
    runs, selected = [], {}
    for model, asm, schedule in points:
        cfg = compose([f"model={model}", f"asm={asm}", f"schedule={schedule}", *extra])
        run_dir = Path(cfg.run_dir)
        samples = int(cfg.data.get("limit") or cfg.plan.samples)
        offsets = replicate_offsets(cfg) or []  # seeds=[...]: one folder per seed, each the full cost
        folders = [run_dir.with_name(f"{run_dir.name}-seed{k}") for k in offsets] or [run_dir]
        if "size" not in selected and any((f / "summary.json").is_file() for f in folders):
            selected["size"] = selection_size(cfg)  # every run selects the same data
        done = all(is_done(folder, selected.get("size")) for folder in folders)
        runs.append(PlannedRun(model, asm, schedule, str(cfg.run_name), run_dir, done,
                               run_cost(cfg.model, str(cfg.asm.strategy), samples, max(1, len(offsets))),
                               measured_entry(model)[1]))
    return experiment, runs


def format_plan(table: str, runs: Sequence[PlannedRun]) -> str:
    lines = [f"make reproduce TABLE={table}: {len(runs)} runs; GPU-hours on one {published_costs()['gpu']} "
             "(transformer only, omiti2v/generate/published_costs.yaml)"]
    for r in runs:
        status = "done   " if r.done else "pending"
        if r.cost is None:
            cost = f"not measured (make plan MODEL={r.model})"
        else:
            c = r.cost
            cost = (f"{c.forwards_per_step} fwd x {c.calls_per_video} calls x {c.seconds_per_forward:.2f} s"
                    f"{'' if c.asm_factor == 1.0 else f' x {c.asm_factor:g}'} = {c.seconds_per_video:6.1f} s/video,"
                    f" {c.samples} samples{f' x {c.replicates} seeds' if c.replicates > 1 else ''}: {c.gpu_hours:6.1f} GPU-h")
            if "assumed" in r.cost_note:
                cost += " (assumed: see published_costs.yaml)"
        lines.append(f"  {r.run_name:48s} {status} {cost}")
    measured = [r for r in runs if r.cost is not None]
    pending = [r for r in measured if not r.done]
    unmeasured = len(runs) - len(measured)
    lines.append(f"total: {sum(r.cost.gpu_hours for r in measured):.1f} GPU-h for {len(measured)} measured runs "
                 f"({sum(r.cost.gpu_hours for r in pending):.1f} GPU-h still to run)"
                 + (f"; {unmeasured} runs not measured" if unmeasured else ""))
    return "\n".join(lines)


def multirun_commands(runs: Sequence[PlannedRun], args: Sequence[str]) -> list[list[str]]:
    """One `python -m omiti2v.eval -m` per (asm, schedule) of the pending runs, models as a comma list."""
    groups: dict[tuple[str, str], list[str]] = {}
    for r in runs:
        if not r.done:
            groups.setdefault((r.asm, r.schedule), []).append(r.model)
    return [[sys.executable, "-m", "omiti2v.eval", "-m", f"model={','.join(models)}", f"asm={asm}",
             f"schedule={schedule}", *args] for (asm, schedule), models in groups.items()]


def reproduce(table: str, args: Sequence[str] = (), dry_run: bool = False) -> int:
    if not dry_run:  # hydra/launcher=slurm off a cluster: one line before the plan, nothing submitted
        exit_on_launcher_problem(compose(run_arguments(args), with_hydra=True).hydra.runtime.choices, multirun=True)
    experiment, runs = plan_runs(table, args)
    print(format_plan(table, runs), flush=True)
    if dry_run:
        return 0
    for command in multirun_commands(runs, run_arguments(args)):
        print("+", " ".join(command[1:]), flush=True)
        code = subprocess.run(command).returncode
        if code:
            print(f"reproduce: the multirun above failed (exit {code}); fix it and rerun: finished runs are kept",
                  file=sys.stderr)
            return code
    cfg = compose(config_overrides(args))
    results = Path(cfg.results_root)
    subprocess.run([sys.executable, "-m", "omiti2v.cli", "tables", "--runs", str(results / "runs"),
                    "--out", str(results / "tables"), "--data", str(cfg.data.name)], check=True)
    for name in experiment.tables:
        print((results / "tables" / str(cfg.data.name) / f"{name}.md").read_text(encoding="utf-8"))
    return 0
