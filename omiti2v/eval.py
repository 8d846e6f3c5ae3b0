"""The eval chain as a Hydra app: `python -m omiti2v.eval` or the `omiti2v-eval` console script of an installed
wheel, `runners/eval.py` in a checkout. The configs are the shipped conf/ (omiti2v.paths.CONF_DIR), so a wheel
runs from any folder; `stages=[generate]` (any subset of cfg.stages) runs some stages only.
Example: omiti2v-eval --config-name smoke stages=[generate] data.limit=1"""

import hydra
from omegaconf import DictConfig

from .errors import exit_on_setup_error
from .paths import CONF_DIR
from .pipeline import run_stages


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
@exit_on_setup_error
def main(cfg: DictConfig) -> None:
    run_stages(cfg, None)


if __name__ == "__main__":
    main()
