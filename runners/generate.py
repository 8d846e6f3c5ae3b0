"""Hydra entry point: stage 'generate'. Example: python runners/generate.py model=framepack asm=scalar"""

from omegaconf import DictConfig

from omiti2v.eval import hydra_app
from omiti2v.pipeline import run_stages


@hydra_app
def main(cfg: DictConfig) -> None:
    run_stages(cfg, ["generate"])


if __name__ == "__main__":
    main()
