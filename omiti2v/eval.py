"""The eval chain as a Hydra app: `python -m omiti2v.eval` or the `omiti2v-eval` console script of an installed
wheel, `runners/eval.py` in a checkout. The configs are the shipped conf/ (omiti2v.paths.CONF_DIR), so a wheel
runs from any folder; `stages=[generate]` (any subset of cfg.stages) runs some stages only.
Example: omiti2v-eval --config-name smoke stages=[generate] data.limit=1

Every runner is a `hydra_app`: its command line is checked before Hydra starts (a misspelt group option, a
comma list without -m, an unknown key, a bad value, a results root that cannot be written: one `error:` line
each, exit 2), and a command line whose models are all `-tiny` composes conf/smoke.yaml, as `make eval` does."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence

from omegaconf import DictConfig

from .config_check import SMOKE_CONFIG, ConfigError, command_line_problems, tiny_models_only
from .errors import exit_on_setup_error
from .paths import CONF_DIR


def hydra_arguments(argv: Sequence[str]):
    """Hydra's own reading of a runner's command line (flags, --config-name, -m, overrides): its argparse parser,
    the one `hydra.main` uses (a private module; tests/test_config_check.py breaks if it moves)."""
    from hydra._internal.utils import get_args_parser

    return get_args_parser().parse_args(list(argv))


def checked_command_line(argv: Sequence[str]) -> list[str]:
    """`argv` as Hydra should see it (with `--config-name smoke` when every model is -tiny and no config is
    named); a problem prints one `error:` line each and exits 2. Help and config-printing flags pass as they are."""
    args = hydra_arguments(argv)
    if args.help or args.hydra_help or args.cfg or args.info or args.shell_completion or args.experimental_rerun \
            or args.config_path or args.config_dir:
        return list(argv)
    argv, config_name = list(argv), args.config_name
    try:
        if config_name is None and tiny_models_only(args.overrides):
            argv, config_name = ["--config-name", SMOKE_CONFIG, *argv], SMOKE_CONFIG
        problems = command_line_problems(args.overrides, config_name or "config", args.multirun)
    except ConfigError as exc:
        problems = exc.violations
    if problems:
        print("\n".join(f"error: {p}" for p in problems), file=sys.stderr)
        sys.exit(2)
    return argv


def hydra_app(task: Callable[[DictConfig], object]) -> Callable[[], None]:
    """A runner's main: the command line checked, then `task(cfg)` as a Hydra app on conf/config.yaml, a
    SetupError ending it with its message and exit code 2."""

    @functools.wraps(task)
    def main() -> None:
        import hydra

        sys.argv[1:] = checked_command_line(sys.argv[1:])
        hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")(exit_on_setup_error(task))()

    return main


def _run_all_stages(cfg: DictConfig) -> None:
    from .pipeline import run_stages

    run_stages(cfg, None)


main = hydra_app(_run_all_stages)


if __name__ == "__main__":
    main()
