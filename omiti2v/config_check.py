"""One schema check of the composed Hydra config, before anything loads.

Every runner calls `validate_config` first, so a typo (`asm.strategy=foo`, `data.limit=-1`) costs one line and
exit code 2 instead of a traceback after minutes of model loading. Only the keys listed here are checked:
keys this module does not know (added by other groups or later branches) pass untouched. The launcher is
checked by a Hydra callback (`LauncherCheck`), since with `-m` the runner's own code runs only inside the jobs.
"""

from __future__ import annotations

import importlib.util
import math
import os
import shutil
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from hydra.core.config_store import ConfigStore
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import InterpolationResolutionError, MissingMandatoryValue

from .errors import SetupError
from .runs import config_value_problems
from .seeds import replicate_key_problems

MISSING = object()
SLURM_PLUGIN_MODULES = ("hydra_plugins.hydra_submitit_launcher", "submitit")
SLURM_COMMANDS = ("sbatch", "srun")  # submitit submits with sbatch and refuses to start without srun


class ConfigError(SetupError, ValueError):
    """The composed config has invalid values; the message has one line per violation."""

    def __init__(self, violations: list[str]):
        super().__init__("\nerror: ".join(violations))
        self.violations = violations


def _select(cfg: DictConfig, key: str):
    """The resolved value at dotted `key`, MISSING when absent or `???`; an unresolvable interpolation raises."""
    try:
        value = OmegaConf.select(cfg, key, default=MISSING, throw_on_missing=True)
    except MissingMandatoryValue:
        return MISSING
    if isinstance(value, DictConfig | ListConfig):
        return OmegaConf.to_container(value, resolve=True)
    return MISSING if value == "???" else value


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def one_of(*choices: str) -> Callable:
    def check(key, value):
        if value not in choices:
            return f"{key} {value!r} is not one of {'|'.join(choices)}"
    return check


def number(gt: float | None = None, ge: float | None = None, nullable: bool = False, integer: bool = False) -> Callable:
    kind = "an integer" if integer else "a number"

    def check(key, value):
        if value is None and nullable:
            return None
        bound = f" > {gt}" if gt is not None else f" >= {ge}" if ge is not None else ""
        wanted = f"{kind}{bound}" + (" or null" if nullable else "")
        if not _is_number(value) or (integer and not isinstance(value, int)):
            return f"{key} {value!r} is not {wanted}"
        if (gt is not None and value <= gt) or (ge is not None and value < ge):
            return f"{key} {value!r} must be {wanted}"
    return check


def subset_of(*choices: str) -> Callable:
    def check(key, value):
        if value is None:
            return None
        if not isinstance(value, list):
            return f"{key} {value!r} is not a list (e.g. {key}=[{choices[0]}])"
        unknown = [v for v in value if v not in choices]
        if unknown:
            return f"{key}: {', '.join(map(repr, unknown))} not in {'|'.join(choices)}"
    return check


def window(key, value):
    from .asm.config import WINDOWS

    if isinstance(value, str):
        return None if value in WINDOWS else f"{key} {value!r} is not one of {'|'.join(WINDOWS)} or [t_lo, t_hi]"
    if isinstance(value, list) and len(value) == 2 and all(map(_is_number, value)) and value[0] < value[1]:
        return None
    return f"{key} {value!r} is not one of {'|'.join(WINDOWS)} or [t_lo, t_hi] with t_lo < t_hi"


def blocks(key, value):
    if value in ("all", "preset", "calibrated"):
        return None
    if isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value):
        return None
    return f"{key} {value!r} is not one of all|preset|calibrated or a list of block indices"


def device(key, value):
    if not isinstance(value, str) or not (value in ("auto", "cpu", "mps") or value == "cuda"
                                          or (value.startswith("cuda:") and value[5:].isdigit())):
        return f"{key} {value!r} is not one of auto|cpu|cuda|cuda:N"
    return cuda_problem(value)


def cuda_problem(requested: str) -> str | None:
    """Why `requested` (cuda, cuda:N) cannot run on this machine, or None."""
    if not requested.startswith("cuda"):
        return None
    import torch

    if not torch.cuda.is_available():
        return f"device={requested}: no CUDA GPU is visible on this machine; use device=cpu or device=auto"
    index = int(requested.partition(":")[2] or 0)
    if index >= torch.cuda.device_count():
        return f"device={requested}: this machine has {torch.cuda.device_count()} CUDA GPU(s)"
    return None


def require_cuda(script: str, cpu_mode: str) -> None:
    """Entry-point guard of the GPU benchmarks: one line and exit 2 when no GPU is visible."""
    import sys

    import torch

    if not torch.cuda.is_available():
        print(f"error: {script} needs a CUDA GPU and none is visible; {cpu_mode}", file=sys.stderr)
        sys.exit(2)


def _registry_names(kind: str) -> tuple[str, ...]:
    if kind == "model":
        from .models.registry import MODELS
        return tuple(sorted(MODELS))
    if kind == "metric":
        from .scorers import SCORERS
        return tuple(sorted(SCORERS))
    from .scorers import FLOW_BACKENDS
    return tuple(sorted(FLOW_BACKENDS))


def _rules() -> dict[str, Callable]:
    from .asm.config import STRATEGIES
    from .data.records import MAIN_CATEGORIES
    from .generate.compile import COMPILE_MODES
    from .models.base import DTYPES, WEIGHTS
    from .stages import STAGES

    return {
        "seed": number(integer=True),
        "device": device,
        "stages": subset_of(*STAGES),
        "data.source": one_of("mini", "hf", "local"),
        "data.limit": number(ge=1, nullable=True, integer=True),
        "data.categories": subset_of(*MAIN_CATEGORIES),
        "model.baseline": one_of(*_registry_names("model")),
        "model.weights": one_of(*WEIGHTS),
        "model.dtype": one_of(*DTYPES),
        "asm.strategy": one_of(*STRATEGIES),
        "asm.gamma_q": number(gt=0, nullable=True),
        "asm.gamma_k": number(gt=0, nullable=True),
        "asm.energy_queries": number(ge=1, nullable=True, integer=True),
        "schedule.blocks": blocks,
        "schedule.window": window,
        "generation.compile": one_of(*COMPILE_MODES),
        "judge.mode": one_of("official", "parity", "fast", "both"),
        "judge.max_new_tokens": number(ge=1, integer=True),
        "scorer.metrics": subset_of(*_registry_names("metric")),
        "scorer.flow_backend": one_of(*_registry_names("flow")),
    }


def _cross_checks(cfg: DictConfig) -> Iterable[str]:
    """Rules that involve more than one key or the file system."""
    yield from config_value_problems(lambda key: None if (value := _select(cfg, key)) is MISSING else value)
    if _select(cfg, "data.source") == "local" and _select(cfg, "data.root") in (MISSING, None, ""):
        yield "data.root is required with data=local (or set OMITI2V_DATA)"
    weights, name = _select(cfg, "model.weights"), _select(cfg, "model.name")
    if weights == "tiny" and isinstance(name, str) and not name.endswith("-tiny"):
        yield (f"model.weights=tiny needs the toy sizes of model={name}-tiny; use model={name}-tiny "
               f"(or `make eval MODEL={name}-tiny`)")
    shard = _select(cfg, "shard")
    if shard not in (MISSING, None):
        from .generate.sharding import parse_shard

        try:
            parse_shard(str(shard))
        except ValueError as exc:
            yield str(exc)
    if _select(cfg, "schedule.blocks") == "calibrated":
        path = _select(cfg, "schedule.calibration_file")
        if path in (MISSING, None) or not Path(os.path.expanduser(str(path))).is_file():
            yield (f"schedule=calibrated: no calibration file at {path} (schedule.calibration_file); run "
                   f"`omiti2v calibrate --model {_select(cfg, 'model.name')}` first")
    yield from replicate_key_problems(cfg)
    from .guidance.check import guidance_violations

    yield from guidance_violations(cfg)


def config_violations(cfg: DictConfig) -> list[str]:
    """One line per invalid value of a known key; [] when the config is valid."""
    violations = []
    for key, rule in _rules().items():
        try:
            value = _select(cfg, key)
        except InterpolationResolutionError as exc:
            violations.append(f"{key}: cannot be resolved ({str(exc).splitlines()[0]})")
            continue
        if value is MISSING:
            continue
        problem = rule(key, value)
        if problem:
            violations.append(problem)
    try:
        violations += list(_cross_checks(cfg))
    except InterpolationResolutionError as exc:
        violations.append(f"config: cannot be resolved ({str(exc).splitlines()[0]})")
    return violations


def validate_config(cfg: DictConfig) -> None:
    """Raise ConfigError listing every violation (runners turn it into one line each and exit 2)."""
    violations = config_violations(cfg)
    if violations:
        raise ConfigError(violations)


def slurm_plugin_installed() -> bool:
    try:
        return all(importlib.util.find_spec(module) is not None for module in SLURM_PLUGIN_MODULES)
    except ModuleNotFoundError:  # no hydra_plugins package at all
        return False


def launcher_problem(choices: Mapping[str, str | None], multirun: bool) -> str | None:
    """Why the chosen Hydra launcher (`choices["hydra/launcher"]`) cannot submit from this machine, or None."""
    if choices.get("hydra/launcher") != "slurm":
        return None
    if not slurm_plugin_installed():
        return ("hydra/launcher=slurm needs hydra-submitit-launcher, which is not installed: "
                "`pip install hydra-submitit-launcher`, or drop hydra/launcher=slurm to run locally")
    missing = [command for command in SLURM_COMMANDS if shutil.which(command) is None]
    if missing:
        return (f"hydra/launcher=slurm: no {' or '.join(f'`{c}`' for c in missing)} on PATH, so this machine is not "
                "a Slurm cluster; run on a login node of a Slurm cluster, or drop hydra/launcher=slurm to run locally")
    if not multirun:
        return ("hydra/launcher=slurm submits only a multirun: add -m (with make: ARGS=\"hydra/launcher=slurm -m\"), "
                "or drop hydra/launcher=slurm to run on this machine")
    return None


def exit_on_launcher_problem(choices: Mapping[str, str | None], multirun: bool) -> None:
    problem = launcher_problem(choices, multirun)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        sys.exit(2)


class LauncherCheck(Callback):
    """Hydra callback (conf/config.yaml): before the run or the first submission, a launcher that cannot work
    here stops the process with one line and exit code 2."""

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        exit_on_launcher_problem(config.hydra.runtime.choices, multirun=False)

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        exit_on_launcher_problem(config.hydra.runtime.choices, multirun=True)


if not slurm_plugin_installed():
    # conf/hydra/launcher/slurm.yaml builds on the plugin's `submitit_slurm`; an empty stand-in lets it compose,
    # so that LauncherCheck, not a config-loading error, names the missing package
    ConfigStore.instance().store(group="hydra/launcher", name="submitit_slurm", node={})
