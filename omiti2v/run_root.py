"""Hydra callback: the run folder is checked before Hydra creates its log folder inside it.

Hydra makes `<run_dir>/.hydra-logs/...` before the runner's own code (and its config check) runs, so a config
name that leaves the results root (`variant=/../../x`, `data.name=../..`) or a root that cannot be written
must be refused here: one `error:` line per problem, exit code 2, nothing created outside the root. A multirun
checks every value its sweep gives those keys.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from .paths import CONFIG_NAMES, CONFIG_SUFFIXES, config_path_problems


def _selector(config: DictConfig, overridden: dict[str, str] | None = None):
    def select(key: str):
        if overridden and key in overridden:
            return overridden[key]
        try:
            value = OmegaConf.select(config, key, default=None)
        except Exception:  # noqa: BLE001 - an unresolvable value is the config check's to name, not ours
            return None
        return value if isinstance(value, str) else None
    return select


def _sweep_values(config: DictConfig) -> list[dict[str, str]]:
    """key -> value for each value a multirun's command line gives a path-naming key."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    keys = {*CONFIG_NAMES, *CONFIG_SUFFIXES, "run_name"}
    found = []
    for override in OverridesParser.create().parse_overrides(list(config.hydra.overrides.task)):
        if override.key_or_group in keys:
            values = (list(override.sweep_string_iterator()) if override.is_sweep_override()
                      else [override.get_value_element_as_str()])
            found += [{override.key_or_group: value} for value in values]
    return found


def _exit_on(problems: list[str]) -> None:
    if problems:
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        sys.exit(2)


def _writable(folder: str, what: str) -> list[str]:
    """[] when `folder` exists (made here if needed) and takes a file; else the one line saying why not."""
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder, prefix=".omiti2v-writable-"):
            pass
    except OSError as exc:
        return [f"cannot write {what} {folder}: {exc.strerror or exc}; choose a writable results_root "
                "(or OMITI2V_RESULTS)"]
    return []


class RunRootCheck(Callback):
    """Before the run (or the sweep) starts: config names stay inside the results root, which can be written."""

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        _exit_on(config_path_problems(_selector(config)))
        _exit_on(_writable(str(Path(config.hydra.run.dir).parent), "Hydra's log folder"))

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        problems = config_path_problems(_selector(config))
        for values in _sweep_values(config):
            problems += [p for p in config_path_problems(_selector(config, values)) if p not in problems]
        _exit_on(problems)
        _exit_on(_writable(str(config.hydra.sweep.dir), "the sweep folder"))
