"""One FramePack video at real size (random weights) with the paper's generation settings, TeaCache on vs off.

Paper settings (conf/model/framepack.yaml, as models/FramePack/inference_v1_json.py of the AlignVid repository
runs them): FramePack's flow-matching UniPC, TeaCache, seed, 640 bucket and steps per section, ASM as the default config (scalar, paper schedule). The pipeline is built once; the
same sample is generated with TeaCache on, then with the hooks removed. Prints per mode the pipeline seconds,
the calls computed/skipped and the per-section pattern, then the time ratio off/on. With random weights the
skip pattern is not the trained model's (its modulated inputs drift differently): the figure checks the
mechanism and its cost, not the real speed-up. The "on" video runs first and carries the warm-up.

    python benchmarks/framepack_paper.py --sections 2 --memory-gb 80       # real size, CUDA (< 4 min on an H200)
    python benchmarks/framepack_paper.py --tiny                             # tiny model on CPU (script check)
Extra Hydra overrides go after `--`, e.g. `-- model=framepack-f1 asm=none`.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from tempfile import TemporaryDirectory

import torch
from hydra import compose, initialize_config_dir

from omiti2v.config_check import require_cuda

CONF = Path(__file__).resolve().parents[1] / "conf"


def compose_config(args: argparse.Namespace):
    model = "framepack-tiny" if args.tiny else "framepack"
    overrides = [f"model={model}", "data=mini", "data.limit=1", f"device={'cpu' if args.tiny else 'cuda'}"]
    if not args.tiny:
        overrides.append("model.weights=random")
    overrides += [f"model.sampling.num_inference_steps={args.steps}"] if args.steps else []
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=overrides + list(args.overrides))
    if args.sections:
        window = int(cfg.model.sampling.latent_window_size)
        cfg.model.sampling.num_frames = 1 + args.sections * window * 4
    return cfg


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="tiny model on the CPU")
    parser.add_argument("--sections", type=int, default=None, help="sections per video (paper: 5)")
    parser.add_argument("--steps", type=int, default=None, help="steps per section (paper: 25)")
    parser.add_argument("--memory-gb", type=float, default=None, help="cap this process's GPU memory")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides (after --)")
    args = parser.parse_args()
    if not args.tiny:
        require_cuda("benchmarks/framepack_paper.py", "use --tiny for the CPU run")

    from omiti2v.cache import teacache_handle
    from omiti2v.data import load_benchmark
    from omiti2v.devices import resolve_device
    from omiti2v.generate.runner import Generator
    from omiti2v.generate.sharding import resolve_shard
    from omiti2v.models import baseline_for
    from omiti2v.runs import RunDir
    from omiti2v.seeds import base_seed

    cfg = compose_config(args)
    if args.memory_gb and torch.cuda.is_available():
        torch.cuda.set_per_process_memory_fraction(args.memory_gb * 1e9 / torch.cuda.get_device_properties(0).total_memory)
    baseline = baseline_for(cfg.model)
    settings = baseline.settings(cfg.model)
    t0 = time.perf_counter()
    generator = Generator(cfg, baseline, settings, resolve_device(str(cfg.device)), base_seed(cfg, settings))
    build_s = time.perf_counter() - t0
    sample = next(iter(load_benchmark(source="mini", limit=1)))
    results = {}
    with TemporaryDirectory() as tmp:
        for mode in ("teacache_on", "teacache_off"):
            if mode == "teacache_off":
                teacache_handle(generator.pipe.transformer).remove()
            rec = generator.record(RunDir(Path(tmp) / mode), sample, resolve_shard(None))
            stats = rec["teacache"] or {}
            results[mode] = {"pipeline_s": rec["timings"]["pipeline"], "computed": stats.get("computed"),
                             "skipped": stats.get("skipped"), "sections": stats.get("sections"),
                             "seed": rec["seed"], "size": [rec["settings"]["height"], rec["settings"]["width"]],
                             "frames": rec["settings"]["frames"], "peak_memory_gb": rec["peak_memory_gb"]}
            print(json.dumps({mode: results[mode]}), flush=True)
    on, off = results["teacache_on"], results["teacache_off"]
    print(json.dumps({"model": settings["name"], "weights": settings["weights"], "build_s": round(build_s, 1),
                      "sections": baseline.sections(settings["sampling"]),
                      "steps": int(settings["sampling"]["num_inference_steps"]),
                      "scheduler": settings["sampling"]["scheduler"],
                      "computed_fraction": round(on["computed"] / (on["computed"] + on["skipped"]), 3),
                      "time_off_over_on": round(off["pipeline_s"] / on["pipeline_s"], 3),
                      "wall_s": round(time.perf_counter() - t0, 1)}))


if __name__ == "__main__":
    main()
