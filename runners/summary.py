"""Hydra entry point: stage 'summary' (summary.json, samples.csv). Example: python runners/summary.py model=framepack asm=scalar"""

from omegaconf import DictConfig

from omiti2v.eval import hydra_app
from omiti2v.pipeline import run_stages


@hydra_app
def main(cfg: DictConfig) -> None:
    run_stages(cfg, ["summary"])


if __name__ == "__main__":
    main()
