"""Hydra entry point: stage 'generate'. Example: python runners/generate.py model=framepack asm=scalar"""

import hydra
from omegaconf import DictConfig

from omiti2v.errors import exit_on_setup_error
from omiti2v.pipeline import run_stages


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
@exit_on_setup_error
def main(cfg: DictConfig) -> None:
    run_stages(cfg, ["generate"])


if __name__ == "__main__":
    main()
