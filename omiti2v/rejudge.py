"""Re-judge a finished run with another judge, beside the original records (judge sensitivity).

`omiti2v rejudge RUN_DIR judge=<name> [key=value ...]` judges the run's videos with conf/judge/<name>.yaml and
appends to RUN_DIR/judges/<name>/judge.jsonl, resumably (the stage skips what that judge already answered).
The run's own judge.jsonl is never opened for writing. summary.json then carries every judge's semantic
scores under "judges" (a leaderboard run's entry follows it). The judge stage with a judge override on a judged
run does the same (see run_judge).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from .conf_files import load_group_config
from .data import Benchmark, benchmark_from_config
from .errors import SetupError
from .paths import CONF_DIR, stem_problem
from .runs import JudgeRunDir, RunDir, atomic_write_json, latest_records, read_jsonl

log = logging.getLogger(__name__)


class UnfinishedRunError(SetupError, ValueError):
    """The folder is not a finished generation: no config.yaml, or a benchmark sample without a generation record."""


def finished_run(path: str | Path) -> tuple[RunDir, DictConfig, Benchmark]:
    """(run, its config, its benchmark), or UnfinishedRunError naming what is missing."""
    path = Path(path)
    if not (path / "config.yaml").is_file():
        raise UnfinishedRunError(f"{path}: not a run folder (no config.yaml); run the generation first")
    cfg = OmegaConf.load(path / "config.yaml")
    benchmark = benchmark_from_config(cfg.data)
    logged = {r["sample_id"] for r in latest_records(read_jsonl(path / "generation.jsonl"), ("sample_id",))
              if r.get("status") in ("ok", "failed")}  # not superseded: a video replaced and not redone
    missing = [s.id for s in benchmark if s.id not in logged]
    if missing:
        raise UnfinishedRunError(f"{path}: generation unfinished, {len(missing)} of {len(benchmark)} samples have no "
                                 f"generation record (first: {missing[0]}); finish the generate stage first")
    return RunDir(path), cfg, benchmark


def judge_config(name: str, overrides: list[str]) -> DictConfig:
    """conf/judge/<name>.yaml with `key=value` overrides (with or without the `judge.` prefix)."""
    path = CONF_DIR / "judge" / f"{name}.yaml"
    if stem_problem(name) or not path.is_file():
        known = sorted(p.stem for p in (CONF_DIR / "judge").glob("*.yaml"))
        raise SetupError(f"judge={name}: no conf/judge/{name}.yaml; known judges: {', '.join(known)}")
    dotlist = [o.removeprefix("judge.") for o in overrides]
    return OmegaConf.merge(load_group_config("judge", name), OmegaConf.from_dotlist(dotlist))


def rejudge(run_path: str | Path, judge_cfg: DictConfig, device: str = "auto") -> Path:
    """Judge a finished run with `judge_cfg` into judges/<name>/judge.jsonl; refresh summary.json's "judges"."""
    from .devices import resolve_device
    from .judge.stage import JudgeSettings, judge_samples, open_judge

    run, cfg, benchmark = finished_run(run_path)
    view = JudgeRunDir(run, str(judge_cfg.name))
    judge, settings, label = open_judge(JudgeSettings.from_config(judge_cfg), resolve_device(device))
    judge_samples(judge, settings, view, list(benchmark), label)
    refresh_summary_judges(run, benchmark, int(cfg.get("seed", 0)))
    if run.summary.exists():  # a leaderboard run: its entry follows the new summary (hash, per-judge columns)
        from .leaderboard.published import refresh_entry_judges

        refresh_entry_judges(run.path)
    return view.judge_log


def refresh_summary_judges(run: RunDir, benchmark: Benchmark, seed: int) -> None:
    """Rewrite summary.json's optional "judges" field (when the run has a summary already)."""
    if not run.summary.exists():
        return
    summary = json.loads(run.summary.read_text(encoding="utf-8"))
    from .summary import per_judge_scores, validate_summary  # pandas, scipy: not for `--help`

    summary["judges"] = per_judge_scores(run, benchmark, seed)
    validate_summary(summary, str(run.summary))
    atomic_write_json(run.summary, summary)


def register(sub) -> None:
    p = sub.add_parser("rejudge")
    p.add_argument("run_dir")
    p.add_argument("overrides", nargs="+", metavar="judge=NAME [key=value]")
    p.add_argument("--device", default="auto", help="auto (the GPU when there is one, else cpu) | cpu | cuda | cuda:N")
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    names = [o.split("=", 1)[1] for o in args.overrides if o.startswith("judge=")]
    if len(names) != 1:
        raise SetupError("rejudge: name the judge once, e.g. `omiti2v rejudge RUN_DIR judge=qwen3-vl-8b`")
    rest = [o for o in args.overrides if not o.startswith("judge=")]
    print(rejudge(args.run_dir, judge_config(names[0], rest), args.device))
    return 0
