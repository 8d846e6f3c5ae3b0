"""`omiti2v tables`, `omiti2v plots` and `omiti2v judge-agreement`: the paper's tables and figures, and the
judges' agreement, from run directories. pandas and scipy load when a command runs, not for its --help."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..errors import SetupError
from ..judge.options import ANSWER_MODES, OFFICIAL


def register(sub) -> None:
    results = os.environ.get("OMITI2V_RESULTS", "results")
    for name in ("tables", "plots"):
        p = sub.add_parser(name)
        p.add_argument("--runs", default=f"{results}/runs", help="root of the run directories ($OMITI2V_RESULTS/runs)")
        p.add_argument("--out", default=f"{results}/{name}",
                       help="output folder; one subfolder per benchmark (data name, + content hash when several)")
        p.add_argument("--data", action="append", help="data set name(s) to report (default: every one found)")
        p.add_argument("--paper", default=None, help="folder of the paper's CSVs (default: the shipped results/paper)")
        p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
        p.set_defaults(func=make_tables if name == "tables" else make_plots_cmd)


def _selection(args) -> tuple[dict[str, list], object]:
    """label -> runs of one benchmark (source + content hash), for the selected data names. A --runs that is no
    folder, or --data naming none of the runs found, is an error (nothing is written); a folder without any
    summarized run gives the paper's numbers beside empty cells."""
    from .paper import PAPER_DIR, load_paper
    from .runs import discover_runs, group_by_benchmark

    if not Path(args.runs).is_dir():
        raise SetupError(f"--runs {args.runs}: no such folder (the run folders, $OMITI2V_RESULTS/runs); nothing "
                         "was written")
    found = discover_runs(args.runs)
    runs = [r for r in found if not args.data or r.data in args.data]
    if found and not runs:
        raise SetupError(f"--data {' '.join(args.data)}: no run of that data under {args.runs} (found: "
                         f"{', '.join(sorted({r.data for r in found}))}); nothing was written")
    groups = group_by_benchmark(runs) or {name: [] for name in (args.data or ["omiti2v"])}
    return groups, load_paper(args.paper or PAPER_DIR)


def _describe(runs) -> str:
    kinds = sorted({r.coverage for r in runs})
    sizes = sorted({r.benchmark["n_samples"] for r in runs if r.benchmark["n_samples"] is not None})
    return f"{len(runs)} run(s), {'/'.join(kinds) or 'no runs'}" + (f", {'/'.join(map(str, sizes))} samples" if sizes else "")


def make_tables(args) -> int:
    from .methods import build_methods_tables, write_methods_tables
    from .supplementary import build_supplementary, write_supplementary
    from .tables import build_tables, write_tables

    groups, paper = _selection(args)
    for label, runs in groups.items():
        data = runs[0].data if runs else label
        written = write_tables(build_tables(runs, data, paper, args.seed), Path(args.out) / label)
        written += write_supplementary(build_supplementary(runs, data, args.seed), Path(args.out) / label)
        written += write_methods_tables(build_methods_tables(runs, data, paper, args.seed), Path(args.out) / label)
        print(f"{label}: {_describe(runs)} -> {len(written)} files in {Path(args.out) / label}")
    return 0


def make_plots_cmd(args) -> int:
    from .methods import build_methods_table, plot_methods_pareto
    from .plots import make_plots

    groups, paper = _selection(args)
    for label, runs in groups.items():
        data = runs[0].data if runs else label
        written = make_plots(runs, data, paper, Path(args.out) / label, args.seed)
        written += plot_methods_pareto(build_methods_table(runs, data, paper, args.seed), runs, data, Path(args.out) / label)
        print(f"{label}: {_describe(runs)} -> {len(written)} figure files in {Path(args.out) / label}")
    return 0


def register_judge_agreement(sub) -> None:
    p = sub.add_parser("judge-agreement")
    p.add_argument("runs", nargs="+", help="finished run folders (judged by their judge and by `omiti2v rejudge`)")
    p.add_argument("--out", required=True)
    p.add_argument("--mode", default=OFFICIAL, choices=ANSWER_MODES)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=judge_agreement_cmd)


def judge_agreement_cmd(args: argparse.Namespace) -> int:
    from .judge_report import build_report, write_report

    for path in write_report(build_report(args.runs, args.mode, args.seed), args.out, args.mode):
        print(path)
    return 0
