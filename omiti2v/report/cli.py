"""`omiti2v tables` and `omiti2v plots`: the paper's tables and figures from run directories."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import SetupError
from .paper import PAPER_DIR, load_paper
from .runs import discover_runs, group_by_benchmark


def register(sub) -> None:
    results = os.environ.get("OMITI2V_RESULTS", "results")
    for name, helptext in (("tables", "the paper's tables (Markdown, CSV, LaTeX) and the methods comparison, with CIs and paired deltas"),
                           ("plots", "figures (PNG, SVG): gain vs cost, per-category bars, gamma sweeps, methods Pareto")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--runs", default=f"{results}/runs", help="root of the run directories ($OMITI2V_RESULTS/runs)")
        p.add_argument("--out", default=f"{results}/{name}",
                       help="output folder; one subfolder per benchmark (data name, + content hash when several)")
        p.add_argument("--data", action="append", help="data set name(s) to report (default: every one found)")
        p.add_argument("--paper", default=str(PAPER_DIR), help="folder of the paper's CSVs")
        p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
        p.set_defaults(func=make_tables if name == "tables" else make_plots_cmd)


def _selection(args) -> tuple[dict[str, list], object]:
    """label -> runs of one benchmark (source + content hash), for the selected data names. A --runs that is no
    folder, or --data naming none of the runs found, is an error (nothing is written); a folder without any
    summarized run gives the paper's numbers beside empty cells."""
    if not Path(args.runs).is_dir():
        raise SetupError(f"--runs {args.runs}: no such folder (the run folders, $OMITI2V_RESULTS/runs); nothing "
                         "was written")
    found = discover_runs(args.runs)
    runs = [r for r in found if not args.data or r.data in args.data]
    if found and not runs:
        raise SetupError(f"--data {' '.join(args.data)}: no run of that data under {args.runs} (found: "
                         f"{', '.join(sorted({r.data for r in found}))}); nothing was written")
    groups = group_by_benchmark(runs) or {name: [] for name in (args.data or ["omiti2v"])}
    return groups, load_paper(args.paper)


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
