"""One check of the composed Hydra config, before anything loads.

Every runner calls `validate_config` first, so a mistake costs one line and exit code 2 instead of a traceback
after minutes of model loading. Two checks:
- values: the rules that the modules reading each group declare next to their code (`CONFIG_RULES` and
  `config_problems`, see omiti2v/config_rules.py), collected through the `RULE_OWNERS` registry;
- keys: the composed config has no key that no shipped yaml (conf/**.yaml) sets and no rule declares, so a
  typo such as `+asm.gama_q=1.5` is refused instead of silently ignored.
`override_problems` reads a command line before Hydra composes it (a misspelt group option, a comma list without
`-m`, an unknown key), and `compose_checked` is the composition every tool shares. The launcher is checked by a
Hydra callback (`LauncherCheck`), since with `-m` the runner's own code runs only inside the jobs.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import ModuleType

import yaml
from hydra.core.config_store import ConfigStore
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import InterpolationResolutionError, MissingMandatoryValue

from .config_rules import MISSING, matches, number
from .errors import SetupError
from .paths import CONF_DIR
from .registry import Registry, closest, unknown_choice
from .runs import config_value_problems

SLURM_PLUGIN_MODULES = ("hydra_plugins.hydra_submitit_launcher", "submitit")
SLURM_COMMANDS = ("sbatch", "srun")  # submitit submits with sbatch and refuses to start without srun
SMOKE_CONFIG = "smoke"  # conf/smoke.yaml: what a run of `-tiny` models only composes from

# Modules declaring rules (CONFIG_RULES, config_problems) for the groups they read, in the order lines print.
RULE_OWNERS = Registry("config rules", base=ModuleType).declare_all({
    "stages": "omiti2v.stages",
    "data": "omiti2v.data.benchmark",
    "model": "omiti2v.models.settings",
    "asm": "omiti2v.asm.config",
    "schedule": "omiti2v.asm.schedule",
    "generation": "omiti2v.generate.options",
    "judge": "omiti2v.judge.options",
    "scorer": "omiti2v.scorers.registry",
    "seeds": "omiti2v.seeds",
    "guidance": "omiti2v.guidance.check",
})


class ConfigError(SetupError, ValueError):
    """The composed config has invalid values; the message has one line per violation."""

    def __init__(self, violations: list[str]):
        super().__init__("\nerror: ".join(violations))
        self.violations = violations


# -- run-level keys (conf/config.yaml) ---------------------------------------------------------------------------

def device(key, value):
    if not isinstance(value, str) or not (value in ("auto", "cpu", "mps") or value == "cuda"
                                          or (value.startswith("cuda:") and value[5:].isdigit())):
        return f"{key} {value!r} is not one of auto|cpu|cuda|cuda:N"
    return cuda_problem(value)


CONFIG_RULES = {
    "seed": number(integer=True),
    "device": device,
    # appended to the run folder's name (asm-schedule + variant): a dash first (its characters: config_problems)
    "variant": matches(r"(-[A-Za-z0-9].*)?", "'' or a suffix starting with '-' (e.g. variant=-gq1.5)"),
}


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
    import torch

    if not torch.cuda.is_available():
        print(f"error: {script} needs a CUDA GPU and none is visible; {cpu_mode}", file=sys.stderr)
        sys.exit(2)


def config_problems(cfg: DictConfig) -> Iterable[str]:
    # seeds out of range, names that would move the run folder or its files outside the root (omiti2v/runs.py)
    yield from config_value_problems(lambda key: None if (value := _select(cfg, key)) is MISSING else value)
    weights, name = _select(cfg, "model.weights"), _select(cfg, "model.name")
    if weights == "tiny" and isinstance(name, str) and not name.endswith("-tiny"):
        yield (f"model.weights=tiny needs the toy sizes of model={name}-tiny; use model={name}-tiny "
               f"(or `make eval MODEL={name}-tiny`)")


# -- values --------------------------------------------------------------------------------------------------------

def _select(cfg: DictConfig, key: str):
    """The resolved value at dotted `key`, MISSING when absent or `???`; an unresolvable interpolation raises."""
    try:
        value = OmegaConf.select(cfg, key, default=MISSING, throw_on_missing=True)
    except MissingMandatoryValue:
        return MISSING
    if isinstance(value, DictConfig | ListConfig):
        return OmegaConf.to_container(value, resolve=True)
    return MISSING if value == "???" else value


def _owners() -> list[ModuleType]:
    return [sys.modules[__name__], *(RULE_OWNERS[name] for name in RULE_OWNERS)]


def all_rules() -> dict:
    """Every declared rule, key -> rule, in the order the owners are registered."""
    return {key: rule for owner in _owners() for key, rule in getattr(owner, "CONFIG_RULES", {}).items()}


def config_violations(cfg: DictConfig) -> list[str]:
    """One line per invalid value and per unknown key; [] when the config is valid."""
    violations = []
    for key, rule in all_rules().items():
        try:
            value = _select(cfg, key)
        except InterpolationResolutionError as exc:
            violations.append(f"{key}: cannot be resolved ({str(exc).splitlines()[0]})")
            continue
        if value is not MISSING:
            violations += filter(None, [rule(key, value)])
    for owner in _owners():
        cross = getattr(owner, "config_problems", None)
        try:
            violations += list(cross(cfg)) if cross else []
        except InterpolationResolutionError as exc:
            violations.append(f"config: cannot be resolved ({str(exc).splitlines()[0]})")
    return violations + unknown_keys(OmegaConf.to_container(cfg, resolve=False))


def validate_config(cfg: DictConfig) -> None:
    """Raise ConfigError listing every violation (runners turn it into one line each and exit 2)."""
    violations = config_violations(cfg)
    if violations:
        raise ConfigError(violations)


# -- keys ------------------------------------------------------------------------------------------------------------

def config_groups(conf_dir: Path = CONF_DIR) -> dict[str, list[str]]:
    """Selectable group -> its options (conf/<group>/*.yaml), Hydra's own groups left out."""
    return {d.name: sorted(p.stem for p in d.glob("*.yaml")) for d in sorted(conf_dir.iterdir())
            if d.is_dir() and d.name != "hydra"}


def _package(path: Path, default: str) -> str:
    """Where a yaml file's keys land: its `# @package` header, else its group."""
    with path.open(encoding="utf-8") as handle:
        first = handle.readline().strip()
    if first.startswith("# @package"):
        package = first.removeprefix("# @package").strip()
        return "" if package == "_global_" else default if package == "_group_" else package
    return default


@functools.lru_cache(maxsize=4)
def known_keys(conf_dir: Path = CONF_DIR) -> dict[str, bool]:
    """Every key the shipped configs set or a rule declares, dotted -> open (True: a value, anything may hang
    below it; False: a mapping whose own keys are all known)."""
    known: dict[str, bool] = {"hydra": True}  # Hydra's own node, when a config is composed with it

    def add(path: str, open_: bool) -> None:
        known[path] = known.get(path, False) or open_

    def walk(prefix: str, node) -> None:
        for key, value in node.items():
            if prefix == "" and key in ("defaults", "hydra"):
                continue
            path = f"{prefix}.{key}" if prefix else str(key)
            add(path, not isinstance(value, dict))
            if isinstance(value, dict):
                walk(path, value)

    files = [(p, "") for p in conf_dir.glob("*.yaml")]
    files += [(p, group) for group in config_groups(conf_dir) for p in (conf_dir / group).glob("*.yaml")]
    for path, group in files:
        package = _package(path, group)
        node = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if package:
            node.pop("defaults", None)
            _add_parents(package + ".", add)
        walk(package, node)
    for key in all_rules():
        _add_parents(key, add)
        add(key, True)
    return known


def _add_parents(path: str, add) -> None:
    parts = path.split(".")
    for i in range(1, len(parts)):
        add(".".join(parts[:i]), False)


def _key_problem(path: str, known: Mapping[str, bool]) -> str | None:
    """Why `path` is not a key the config may hold (its first unknown part, with the closest known names), or
    None."""
    parts = path.split(".")
    for i in range(1, len(parts) + 1):
        head, parent = ".".join(parts[:i]), ".".join(parts[: i - 1])
        if head not in known:
            siblings = sorted(k.rpartition(".")[2] for k in known if k.rpartition(".")[0] == parent)
            near = [f"{parent}.{n}" if parent else n for n in closest(parts[i - 1], siblings)]
            what = "no such key" if head == path else f"no such key {head!r}"
            if near:
                return f"{path}: {what} (did you mean {' or '.join(near)}?)"
            listing = f"the keys of {parent}: {', '.join(siblings)}" if parent else "see docs/configuration.md"
            return f"{path}: {what} ({listing})"
        if known[head]:
            return None  # below a value: anything goes
    return None


def unknown_keys(container: Mapping, known: Mapping[str, bool] | None = None, prefix: str = "") -> list[str]:
    """One line per key of `container` (a config as plain mappings) that no config sets and no rule declares."""
    known = known_keys() if known is None else known
    problems = []
    for key, value in container.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        problem = _key_problem(path, known)
        if problem:
            problems.append(problem)
        elif isinstance(value, Mapping) and not known.get(path):
            problems += unknown_keys(value, known, path)
    return problems


# -- command lines ---------------------------------------------------------------------------------------------------

def parse_overrides(overrides: Sequence[str]) -> list:
    """Hydra's own reading of `key=value` overrides (a syntax error raises ConfigError)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    try:
        return OverridesParser.create().parse_overrides(list(overrides))
    except OverrideParseException as exc:
        raise ConfigError([str(exc).splitlines()[0]]) from None


def _is_hydra(key: str) -> bool:
    return key == "hydra" or key.startswith(("hydra.", "hydra/"))


def _override_problems(override, groups: Mapping[str, list[str]], known: Mapping[str, bool], multirun: bool
                       ) -> tuple[list[str], bool]:
    """(problems of one parsed override, whether they are only that its key is unknown)."""
    key = override.key_or_group
    if _is_hydra(key) or override.is_delete():
        return [], False
    values = list(override.sweep_string_iterator()) if override.is_sweep_override() else [str(override.value())]
    problems = []
    if override.is_sweep_override() and not multirun:
        problems.append(f"{override.input_line}: a comma list is a sweep (one run per value) and needs -m "
                        "(with make: ARGS=-m, or `make plan`); or give one value")
    if key in groups:
        problems += [unknown_choice(key, v, groups[key]) + f" (options: conf/{key}/*.yaml)"
                     for v in values if v not in groups[key]]
        return problems, False
    if problems:
        return problems, False
    if "." not in key and key not in known:
        near = closest(key, [*groups, *(k for k in known if "." not in k)])
        return [f"{key}: no such key or config group" + (f" (did you mean {' or '.join(near)}?)" if near else "")], True
    problem = _key_problem(key, known)
    return ([problem], True) if problem else ([], False)


def override_problems(overrides: Sequence[str], multirun: bool = False) -> list[str]:
    """What Hydra would stop at with a long message, said in one line each: a group option that does not exist
    (with the closest names), a comma list without -m, a key that no config has."""
    groups, known = config_groups(), known_keys()
    return [p for o in parse_overrides(overrides) for p in _override_problems(o, groups, known, multirun)[0]]


def tiny_models_only(overrides: Sequence[str]) -> bool:
    """Whether the command line picks `-tiny` models only (then the run composes conf/smoke.yaml: the mini set,
    tiny judge and scorers), as `make eval MODEL=x-tiny` does."""
    models = [v for o in parse_overrides(overrides) if o.key_or_group == "model" and not o.is_delete()
              for v in (o.sweep_string_iterator() if o.is_sweep_override() else [str(o.value())])]
    return bool(models) and all(m.endswith("-tiny") for m in models)


def sweep_points(overrides: Sequence[str]) -> list[list[str]]:
    """Every point of a `-m` sweep of comma lists, as plain overrides (Hydra's own settings left out)."""
    points: list[list[str]] = [[]]
    for override, line in zip(parse_overrides(overrides), overrides, strict=True):
        if _is_hydra(override.key_or_group):
            continue
        if override.is_sweep_override():
            head = line.partition("=")[0]
            points = [[*p, f"{head}={v}"] for p in points for v in override.sweep_string_iterator()]
        else:
            points = [[*p, line] for p in points]
    return points


def compose_checked(overrides: Sequence[str], config_name: str = "config") -> DictConfig:
    """conf/<config_name>.yaml composed with `overrides` and validated: ConfigError (one line per problem) for
    a misspelt group option, an unknown key or a bad value. Nothing loads."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    problems = override_problems(overrides)
    if problems:
        raise ConfigError(problems)
    try:
        if GlobalHydra.instance().is_initialized():  # inside a Hydra app: its search path
            cfg = compose(config_name, overrides=list(overrides))
        else:
            with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
                cfg = compose(config_name, overrides=list(overrides))
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError([f"config: {str(exc).strip().splitlines()[0]}"]) from None
    validate_config(cfg)
    return cfg


def writable_problem(folder: Path, create: bool = False) -> str | None:
    """Why `folder` (a results root or run folder) cannot be created or written (a file in the way, /proc, no
    permission), or None. Without `create` nothing is left behind: a file is made and removed in the nearest
    folder that exists; with it, the folder is made."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        if not existing.is_dir():
            raise NotADirectoryError(f"{existing} is a file, not a folder")
        if create:
            folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder if create else existing, prefix=".omiti2v-check-"):
            pass
    except OSError as exc:
        return f"results root {folder} is not writable ({exc.strerror or exc}): set results_root=DIR or OMITI2V_RESULTS"
    return None


def command_line_problems(overrides: Sequence[str], config_name: str, multirun: bool) -> list[str]:
    """Everything a runner's command line gets wrong, before Hydra starts (which would make the run's log
    folder under the results root first): a group option or sweep mistake alone; else each sweep point's
    composed config (without the overrides of unknown keys, reported last) and the results root."""
    groups, known = config_groups(), known_keys()
    checked = [(line, *_override_problems(o, groups, known, multirun))
               for line, o in zip(overrides, parse_overrides(overrides), strict=True)]
    if any(problems and not key_only for _, problems, key_only in checked):
        return [p for _, problems, _ in checked for p in problems]
    unknown = [p for _, problems, _ in checked for p in problems]
    usable = [line for line, problems, _ in checked if not problems]
    cfg = None
    for point in sweep_points(usable):
        try:
            cfg = compose_checked(point, config_name)
        except ConfigError as exc:
            return [f"{' '.join(point)}: {v}" if multirun else v for v in exc.violations] + unknown
    if unknown:
        return unknown
    root = Path(os.path.expanduser(str(cfg.results_root))) if cfg is not None else None
    return list(filter(None, [root and writable_problem(root)]))


# -- launcher ----------------------------------------------------------------------------------------------------------

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
