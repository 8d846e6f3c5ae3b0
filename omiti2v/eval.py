"""The eval chain as a Hydra app: `python -m omiti2v.eval` or the `omiti2v-eval` console script of an installed
wheel, `runners/eval.py` in a checkout. The configs are the shipped conf/ (omiti2v.paths.CONF_DIR), so a wheel
runs from any folder; `stages=[generate]` (any subset of cfg.stages) runs some stages only.
Example: omiti2v-eval --config-name smoke stages=[generate] data.limit=1; `seeds=[0,1,2]` runs seed replicates
(omiti2v/seeds.py)."""

import hydra
from omegaconf import DictConfig

from .errors import exit_on_setup_error
from .paths import CONF_DIR
from .pipeline import run_stages
from .seeds import replicate_offsets, run_replicates


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
@exit_on_setup_error
def main(cfg: DictConfig) -> None:
    offsets = replicate_offsets(cfg)  # seeds=[...] / replicates=N: one sibling run folder per seed
    if offsets:
        run_replicates(cfg, offsets)
    else:
        run_stages(cfg, None)


if __name__ == "__main__":
    main()
