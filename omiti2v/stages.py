"""The eval chain's stages by name: generate -> judge -> score -> summary, each a function of (cfg, run, benchmark).

A stage is imported on first use, so its heavy dependencies load only when it runs; the names alone are what the
config check needs. Each stage is resumable on its own: it skips work whose results are in the run folder already.
"""

from __future__ import annotations

import importlib

STAGES: dict[str, str] = {
    "generate": "omiti2v.generate:run_generation",
    "judge": "omiti2v.judge:run_judge",
    "score": "omiti2v.scorers:run_scorers",
    "summary": "omiti2v.summary:run_summary",
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
