"""`omiti2v` console script: the non-Hydra tools. Each feature module adds its own subcommands."""

from __future__ import annotations

import argparse
import importlib
import sys

from .errors import SetupError, interrupted_exit, signals_interrupt

# Modules exposing `register(subparsers)`; one that is not installed yet is skipped.
COMMAND_MODULES = (
    "omiti2v.data.cli",
    "omiti2v.plan",
    "omiti2v.report.cli",
    "omiti2v.leaderboard.cli",
    "omiti2v.calibrate.cli",
    "omiti2v.leaderboard.export_cli",
    "omiti2v.rejudge",
    "omiti2v.report.judge_report",
    "omiti2v.browse.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="omiti2v", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and name.startswith(exc.name):
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
