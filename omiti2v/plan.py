"""`omiti2v plan`: the cost planner for a list of models x ASM settings, without writing Hydra overrides."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("plan", description=__doc__)
    p.add_argument("--model", default="wan2.1", help="comma-separated model configs, e.g. wan2.1,framepack")
    p.add_argument("--asm", default="none", help="comma-separated asm configs, e.g. none,scalar")
    p.add_argument("--schedule", default="paper", help="comma-separated schedule configs")
    p.add_argument("--samples", type=int, default=None, help="samples per config (default: 367, the benchmark)")
    p.add_argument("--device", default="auto", help="auto (this rank's GPU, else cpu) | cpu | cuda | cuda:N; "
                                                    "real sizes need a GPU")
    p.add_argument("--out", default=None, help="append one JSON line per row to this file")
    p.add_argument("--table", default=None, metavar="JSONL", help="only print the rows recorded in JSONL")
    p.add_argument("overrides", nargs="*", help="extra Hydra overrides, e.g. model.sampling.num_frames=33")
    p.set_defaults(func=_plan)


def _plan(args: argparse.Namespace) -> int:
    from .config_check import compose_checked
    from .errors import SetupError
    from .generate.costs_table import StepCost, format_costs, record_cost
    from .runs import read_jsonl

    if args.table:
        if not Path(args.table).is_file():
            raise SetupError(f"--table {args.table}: no such file (`make plan` appends its rows to "
                             "$OMITI2V_RESULTS/plans.jsonl, `omiti2v plan --out FILE` to FILE)")
        print(format_costs([StepCost(**r) for r in read_jsonl(args.table)]))
        return 0
    points = [[f"model={model}", f"asm={asm}", f"schedule={schedule}", f"device={args.device}", *args.overrides]
              for model in args.model.split(",") for asm in args.asm.split(",") for schedule in args.schedule.split(",")]
    configs = [compose_checked(point) for point in points]  # every mistake before the first measurement
    from .generate.planner import plan_config

    costs = []
    print(format_costs([], footer=False), flush=True)  # header now, each row as it is measured, footer last
    for cfg in configs:
        cost = plan_config(cfg, samples=args.samples)
        if args.out:
            record_cost(args.out, cost)
        costs.append(cost)
        print(format_costs([cost], header=False, footer=False), flush=True)
    print(format_costs(costs, header=False).splitlines()[-1])
    return 0
