"""`omiti2v` console script: the non-Hydra tools. Each feature module adds its own subcommands."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from .errors import SetupError, interrupted_exit, signals_interrupt
from .registry import Registry, unknown_choice

# command -> the `register(subparsers)` that adds it (imported only when that command runs) and its summary, shown
# by `omiti2v --help` and as the command's help. A function may register several commands; each is listed here.
COMMANDS = Registry("omiti2v command", base=Callable).declare_all({
    "validate-data": ("omiti2v.data.cli:register",
                      "validate benchmark roots (meta.json + images); exit 1 if any is invalid"),
    "plan": ("omiti2v.plan:register", "time one denoising step per model x ASM (real size, random weights)"),
    "tables": ("omiti2v.report.cli:register", "the paper's tables (Markdown, CSV, LaTeX) and the methods comparison, "
                                              "with CIs and paired deltas"),
    "plots": ("omiti2v.report.cli:register", "figures (PNG, SVG): gain vs cost, per-category bars, gamma sweeps, "
                                             "methods Pareto"),
    "submit": ("omiti2v.leaderboard.cli:register", "validate a submission (folder or .zip of {id}.mp4 + "
                                                   "submission.yaml), judge and score it, and add it to the leaderboard"),
    "leaderboard": ("omiti2v.leaderboard.cli:register", "rebuild leaderboard.csv and index.html from the entries"),
    "calibrate": ("omiti2v.calibrate.cli:register", "score every block's foreground ratio and select "
                  "foreground-sensitive blocks (writes blocks.yaml for schedule=calibrated)"),
    "analyze-attention": ("omiti2v.calibrate.cli:register", "attention entropy per block x step with/without ASM "
                          "(several gamma) and input blur; attention maps of chosen tokens"),
    "export": ("omiti2v.leaderboard.export_cli:register", "write a run folder as a datasets.DatasetDict (questions, "
               "videos splits) and/or push it to the Hugging Face Hub"),
    "rejudge": ("omiti2v.rejudge:register", "judge a finished run again with another judge (beside its records)"),
    "judge-agreement": ("omiti2v.report.cli:register_judge_agreement",
                        "how the runs' numbers move across judges (kappa, bias, tau, deltas)"),
    "browse": ("omiti2v.browse.cli:register", "a static HTML page of every sample of a run (or two runs side by side): "
               "image, video, prompt, questions, verdicts, scores"),
})


class _Subparsers:
    """The subparsers action as a command module sees it: each parser it adds gets the table's summary as its
    help and (unless it has its own) its description, so the words live in one place."""

    def __init__(self, action):
        self.action = action

    def add_parser(self, name: str, **kwargs) -> argparse.ArgumentParser:
        kwargs["help"] = COMMANDS.summary(name)
        kwargs.setdefault("description", COMMANDS.summary(name))
        return self.action.add_parser(name, **kwargs)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; with `argv`, only the named command's module is imported (the others are listed by name and
    summary), so `omiti2v --help` and `omiti2v CMD --help` import no heavy library. Without: every command."""
    parser = argparse.ArgumentParser(prog="omiti2v", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    chosen = list(COMMANDS) if argv is None else [next((a for a in argv if not a.startswith("-")), None)]
    if argv is not None and chosen[0] is not None and chosen[0] not in COMMANDS:
        parser.error(unknown_choice("command", chosen[0], COMMANDS))
    for name in chosen:
        if name is not None and name not in sub.choices:
            COMMANDS[name](_Subparsers(sub))  # adds `name` and any other command of the same function
    for name in COMMANDS:
        if name not in sub.choices:
            sub.add_parser(name, help=COMMANDS.summary(name), add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    try:
        with signals_interrupt():
            return int(args.func(args) or 0)
    except SetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        return interrupted_exit(exc)


if __name__ == "__main__":
    sys.exit(main())
