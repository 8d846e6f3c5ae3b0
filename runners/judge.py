"""Hydra entry point: stage 'judge'. Example: python runners/judge.py model=framepack asm=scalar"""

from omegaconf import DictConfig

from omiti2v.eval import hydra_app
from omiti2v.pipeline import run_stages


@hydra_app
def main(cfg: DictConfig) -> None:
    run_stages(cfg, ["judge"])


if __name__ == "__main__":
    main()
