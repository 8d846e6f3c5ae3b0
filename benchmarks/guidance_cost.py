"""Seconds per denoising step of every guidance method against the paper's Wan2.1 baseline (guidance 1.0: one
forward per step), measured side by side in one run.

Real size (GPU): the Wan2.1-I2V-14B transformer at 480x832, 81 frames (latent 21x60x104, 32,760 tokens), random
bf16 weights built on the GPU, one step's inputs with a random negative-prompt embedding. Each method is installed
as a run installs it (`omiti2v.guidance.apply_guidance`, conf/guidance/ defaults) and timed at one step of each
distinct pass plan of its 40-step schedule (stg / pag: step 0 runs the conditional pass only, later steps the
perturbed one too; alg: the low-passed steps run three passes, the rest two); its seconds per step are the
schedule-weighted mean. Settings go round-robin (baseline, cfg, ..., baseline, ...) so clock drift hits all alike;
medians over `--repeats`. Printed per method: forwards per step, seconds per step, the ratio to the baseline, and
the overhead beyond its forwards (seconds per step / (forwards x baseline seconds per forward): the
`guidance_factor` of omiti2v/generate/published_costs.yaml); then one JSON line with everything.

    python benchmarks/guidance_cost.py --memory-gb 80     # real size, one H100 (about 5 minutes with the build)
    python benchmarks/guidance_cost.py --tiny             # tiny Wan on the CPU (smoke check of the script)
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from omiti2v.config_check import require_cuda
from omiti2v.guidance import GuidanceConfig, apply_guidance
from omiti2v.guidance.methods import build_method
from omiti2v.models.architectures import build_transformer, dummy_inputs

# conf/guidance/ defaults on the paper's Wan2.1 (model guidance 1.0)
METHODS = {
    "cfg": GuidanceConfig("cfg", 5.0),
    "cfg-zero-star": GuidanceConfig("cfg-zero-star", 5.0),
    "apg": GuidanceConfig("apg", 5.0),
    "stg": GuidanceConfig("stg", 1.0, blocks=(9,)),
    "pag": GuidanceConfig("pag", 1.0, blocks=(9,)),
    "alg": GuidanceConfig("alg", 0.2, cfg_scale=5.0),
}
LATENT = {"real": (21, 60, 104), "tiny": (2, 8, 8)}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def step_plans(config: GuidanceConfig, steps: int) -> list[tuple[int, int, int]]:
    """(first step, steps sharing its pass plan, forwards) per distinct pass plan of the schedule."""
    method = build_method(config)
    plans: dict[tuple[str, ...], list[int]] = {}
    for step in range(steps):
        plans.setdefault(method.passes(step, steps), []).append(step)
    return [(members[0], len(members), len(plan)) for plan, members in plans.items()]


def timed_step(model, inputs: dict, device: torch.device, config: GuidanceConfig | None, negative, steps: int,
               step: int) -> tuple[float, float | None]:
    """(seconds, peak GB on a GPU) of one denoising step at `step` under `config` (None: the plain forward)."""
    _sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    if config is None:
        start = time.perf_counter()
        model(**inputs)
    else:
        with apply_guidance(model, config) as handle:
            handle.start({"encoder_hidden_states": negative}, steps, step=step)
            start = time.perf_counter()
            model(**inputs)
    _sync(device)
    seconds = time.perf_counter() - start
    return seconds, torch.cuda.max_memory_allocated(device) / 1e9 if device.type == "cuda" else None


def _peak(values) -> float | None:
    known = [v for v in values if v is not None]
    return max(known) if known else None


def measure(model, inputs: dict, negative, device: torch.device, methods: dict[str, GuidanceConfig], steps: int,
            warmup: int, repeats: int) -> dict:
    """Round-robin medians: the baseline and every (method, pass plan)."""
    cases = [("baseline", None, 0, steps, 1)] + [(name, config, first, count, forwards) for name, config in methods.items()
                                                   for first, count, forwards in step_plans(config, steps)]
    samples: dict[tuple[str, int], list[tuple[float, float]]] = {(name, first): [] for name, _, first, _, _ in cases}
    with torch.inference_mode():
        for round_index in range(warmup + repeats):
            for name, config, first, _, _ in cases:
                sample = timed_step(model, inputs, device, config, negative, steps, first)
                if round_index >= warmup:
                    samples[(name, first)].append(sample)
    base = statistics.median(s for s, _ in samples[("baseline", 0)])
    result = {"baseline": {"seconds_per_step": base, "forwards_per_step": 1.0,
                           "peak_gb": _peak(m for _, m in samples[("baseline", 0)])}}
    for name in methods:
        plans = [(first, count, forwards) for case, _, first, count, forwards in cases if case == name]
        seconds = sum(count * statistics.median(s for s, _ in samples[(name, first)]) for first, count, _ in plans) / steps
        forwards = sum(count * f for _, count, f in plans) / steps
        result[name] = {"seconds_per_step": seconds, "forwards_per_step": forwards, "ratio": seconds / base,
                        "overhead": seconds / (forwards * base),
                        "peak_gb": _peak(m for first, _, _ in plans for _, m in samples[(name, first)]),
                        "plans": {str(first): {"steps": count, "forwards": f,
                                               "seconds": statistics.median(s for s, _ in samples[(name, first)])}
                                  for first, count, f in plans}}
    return result


def _gb(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} GB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="tiny Wan on the CPU")
    parser.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated subset of {list(METHODS)}")
    parser.add_argument("--steps", type=int, default=40, help="denoising steps of the schedule (Wan2.1 paper: 40)")
    parser.add_argument("--repeats", type=int, default=2, help="timed rounds (median reported)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first")
    parser.add_argument("--memory-gb", type=float, help="cap this process's GPU memory (e.g. 80 on an H200)")
    parser.add_argument("--output", type=Path, help="also write the JSON result here")
    args = parser.parse_args()
    if not args.tiny:
        require_cuda("benchmarks/guidance_cost.py", "use --tiny for the CPU smoke run")
    size = "tiny" if args.tiny else "real"
    device = torch.device("cpu" if args.tiny else "cuda")
    dtype = torch.float32 if args.tiny else torch.bfloat16
    if args.memory_gb and device.type == "cuda":
        total = torch.cuda.get_device_properties(device).total_memory / 1e9
        torch.cuda.set_per_process_memory_fraction(min(1.0, args.memory_gb / total), torch.cuda.current_device())
    unknown = set(filter(None, args.methods.split(","))) - set(METHODS)
    if unknown:
        raise SystemExit(f"unknown methods {sorted(unknown)}; expected a subset of {list(METHODS)}")
    started = time.perf_counter()
    model = build_transformer("wan", size, dtype=dtype, device=device)
    frames, height, width = LATENT[size]
    generator = torch.Generator().manual_seed(0)
    inputs = dummy_inputs("wan", size, num_frames=frames, height=height, width=width, dtype=dtype, device=device,
                          generator=generator)
    negative = torch.randn(inputs["encoder_hidden_states"].shape, generator=generator).to(device=device, dtype=dtype)
    build_s = time.perf_counter() - started
    methods = {name: METHODS[name].resolved(1.0) for name in filter(None, args.methods.split(","))}
    result = measure(model, inputs, negative, device, methods, args.steps, args.warmup, args.repeats)
    base = result["baseline"]
    print(f"Wan2.1-I2V-14B transformer ({size}, latent {list(LATENT[size])}, {args.steps} steps, build {build_s:.0f} s, "
          f"{torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}): baseline (guidance 1.0) "
          f"{base['seconds_per_step']:.4f} s/step, peak {_gb(base['peak_gb'])}")
    for name in methods:
        r = result[name]
        print(f"  {name:14s} {r['forwards_per_step']:5.3f} fwd/step  {r['seconds_per_step']:8.4f} s/step  "
              f"x{r['ratio']:.3f} vs baseline  overhead beyond its forwards x{r['overhead']:.3f}  peak {_gb(r['peak_gb'])}")
    record = {"benchmark": "guidance_cost", "size": size, "device": str(device), "torch": torch.__version__,
              "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None, "steps": args.steps,
              "latent": list(LATENT[size]), "build_s": round(build_s, 1), "wall_s": round(time.perf_counter() - started, 1),
              "settings": {name: config.record() for name, config in methods.items()}, "results": result}
    print(json.dumps(record, allow_nan=False), flush=True)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(record, indent=2, allow_nan=False))


if __name__ == "__main__":
    main()
