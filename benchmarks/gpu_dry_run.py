"""Real-size dry run on a GPU: random weights, the mini set, through the generation runner or the planner.

The GPU check of a real-size run; avoids omiti2v.pipeline (the config check, the preflight, the later stages) so
it runs with the generation dependencies only.
  python benchmarks/gpu_dry_run.py generate OUT_DIR model=wan2.1 model.weights=random data.limit=1 ...
  python benchmarks/gpu_dry_run.py plan OUT.jsonl model=wan2.1 asm=scalar --memory-gb 80   # as on an 80 GB GPU
`--memory-gb N` caps this process's GPU memory at N GB (1e9 bytes; a CUDA OOM then reads as on that GPU).
Without a GPU it exits 2 unless a model=<name>-tiny override asks for the toy sizes.
"""

import json
import sys
import time
from pathlib import Path

from hydra import compose, initialize_config_dir

CONF = Path(__file__).resolve().parents[1] / "conf"


def main(mode: str, out: str, *overrides: str) -> None:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=["data=mini", *overrides])
    t0 = time.perf_counter()
    if mode == "generate":
        from omiti2v.context import RunContext
        from omiti2v.data import load_benchmark
        from omiti2v.generate import run_generation
        from omiti2v.runs import RunDir, read_jsonl

        bench = load_benchmark(source="mini", limit=cfg.data.limit)
        counts = run_generation(RunContext.from_config(cfg), RunDir(out), bench)
        print(json.dumps({"counts": counts, "wall_s": round(time.perf_counter() - t0, 1)}))
        for rec in read_jsonl(Path(out) / "generation.jsonl"):
            print(json.dumps(rec))
    else:
        from omiti2v.generate.costs_table import format_costs, record_cost
        from omiti2v.generate.planner import plan_config

        cost = plan_config(cfg)
        record_cost(out, cost)
        print(format_costs([cost]))
        print(json.dumps({"wall_s": round(time.perf_counter() - t0, 1)}))


def cap_memory(argv: list[str]) -> list[str]:
    """Apply and drop a `--memory-gb N` pair from the arguments."""
    if "--memory-gb" not in argv:
        return argv
    at = argv.index("--memory-gb")
    import torch

    if not torch.cuda.is_available():  # a tiny CPU run: nothing to cap
        return argv[:at] + argv[at + 2:]
    total = torch.cuda.get_device_properties(0).total_memory / 1e9
    torch.cuda.set_per_process_memory_fraction(min(1.0, float(argv[at + 1]) / total), 0)
    return argv[:at] + argv[at + 2:]


if __name__ == "__main__":
    if not any(arg.startswith("model=") and arg.endswith("-tiny") for arg in sys.argv[3:]):
        from omiti2v.config_check import require_cuda

        require_cuda("benchmarks/gpu_dry_run.py", "a CPU run needs a model=<name>-tiny override")
    main(*cap_memory(sys.argv[1:]))
