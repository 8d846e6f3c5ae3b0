"""`omiti2v tables` and `omiti2v plots`: the paper's tables and figures from run directories."""

from __future__ import annotations

from pathlib import Path

from .paper import PAPER_DIR, load_paper
from .runs import discover_runs


def register(sub) -> None:
    for name, helptext in (("tables", "the paper's tables (Markdown, CSV, LaTeX) with CIs and paired deltas"),
                           ("plots", "figures (PNG, SVG): gain vs cost, per-category bars, gamma sweeps")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--runs", default="results/runs", help="root of the run directories")
        p.add_argument("--out", default=f"results/{name}", help="output folder; one subfolder per data set")
        p.add_argument("--data", action="append", help="data set name(s) to report (default: every one found)")
        p.add_argument("--paper", default=str(PAPER_DIR), help="folder of the paper's CSVs")
        p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
        p.set_defaults(func=make_tables if name == "tables" else make_plots_cmd)


def _selection(args):
    runs = discover_runs(args.runs)
    datas = args.data or sorted({r.data for r in runs}) or ["omiti2v"]
    return runs, datas, load_paper(args.paper)


def make_tables(args) -> int:
    from .tables import build_tables, write_tables

    runs, datas, paper = _selection(args)
    for data in datas:
        written = write_tables(build_tables(runs, data, paper, args.seed), Path(args.out) / data)
        n = sum(r.data == data for r in runs)
        print(f"{data}: {n} run(s) -> {len(written)} files in {Path(args.out) / data}")
    return 0


def make_plots_cmd(args) -> int:
    from .plots import make_plots

    runs, datas, paper = _selection(args)
    for data in datas:
        written = make_plots(runs, data, paper, Path(args.out) / data, args.seed)
        print(f"{data}: {len(written)} figure files in {Path(args.out) / data}")
    return 0
