"""Hydra entry point: visual metrics -> scores.jsonl. Example: python runners/score.py model=framepack asm=scalar"""

from omegaconf import DictConfig

from omiti2v.eval import hydra_app
from omiti2v.pipeline import run_stages


@hydra_app
def main(cfg: DictConfig) -> None:
    run_stages(cfg, ["score"])


if __name__ == "__main__":
    main()
