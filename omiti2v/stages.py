"""The eval chain's stages by name: generate -> judge -> score -> summary, each a function of (ctx, run, benchmark):
the run's resolved settings (omiti2v.context.RunContext), its folder (RunDir) and the selected samples.

A stage is imported on first use, so its heavy dependencies load only when it runs; the names alone are what the
config check needs. Each stage is resumable on its own: it skips work whose results are in the run folder already.
"""

from __future__ import annotations

from collections.abc import Callable

from .config_rules import subset_of
from .registry import Registry

STAGES = Registry("stages", base=Callable).declare_all({
    "generate": "omiti2v.generate:run_generation",
    "judge": "omiti2v.judge:run_judge",
    "score": "omiti2v.scorers:run_scorers",
    "summary": "omiti2v.summary:run_summary",
})

CONFIG_RULES = {"stages": subset_of(*STAGES)}


def resolve_stage(name: str) -> Callable:
    """The stage function `name` (imported now); an unknown name raises UnknownNameError."""
    return STAGES.lookup(name)
