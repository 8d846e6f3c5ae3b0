"""Hydra entry point: cost of one denoising step at real size (random weights) and of the whole config.

Examples:
  python runners/plan.py model=wan2.1 asm=scalar
  python runners/plan.py -m model=wan2.1,framepack asm=none,scalar     # a sweep: one row per point
Rows are printed and appended to ${results_root}/plans.jsonl; `omiti2v plan --table` prints them all.
"""

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from omiti2v.config_check import validate_config
from omiti2v.eval import hydra_app
from omiti2v.seeds import replicate_hours_line


@hydra_app
def main(cfg: DictConfig) -> None:
    from omiti2v.generate.costs_table import format_costs, record_cost
    from omiti2v.generate.planner import plan_config

    validate_config(cfg)
    cost = plan_config(cfg)
    root = Path(hydra.utils.get_original_cwd()) / cfg.results_root
    record_cost(root / "plans.jsonl", cost)
    first = HydraConfig.get().job.num == 0  # a sweep prints the header and the footnote once
    print(format_costs([cost], header=first, footer=first), flush=True)
    if replicas := replicate_hours_line(cfg, cost.hours_per_config):  # seeds=[...] / replicates=N
        print(replicas, flush=True)


if __name__ == "__main__":
    main()
