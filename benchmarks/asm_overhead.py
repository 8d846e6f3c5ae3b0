"""Overhead of ASM on one transformer forward: baseline vs scalar preset vs energy, time and peak memory.

Real size (GPU): Wan2.1-I2V-14B at 480x832, 81 frames (latent 21x60x104, 32,760 tokens) with the wan2.1
preset, and the FramePack transformer at its 640 bucket (480x832, one 9-latent-frame section with its clean
and 2x/4x history latents) with the framepack preset; random bf16 weights built directly on the GPU.
Targets: scalar <= 1.002, energy <= 1.03, extra peak memory <= 1 %.

    python benchmarks/asm_overhead.py                 # real size, CUDA
    python benchmarks/asm_overhead.py --tiny          # tiny models on CPU (smoke check of the script)
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
from pathlib import Path

import torch

from omiti2v.asm import ASMConfig, apply_asm
from omiti2v.models.architectures import build_transformer, dummy_inputs

CASES = {
    # name: (family, preset, real-size latent (frames, height, width), tiny latent)
    "wan2.1-i2v-14b": ("wan", "wan2.1", (21, 60, 104), (2, 8, 8)),
    "framepack": ("framepack", "framepack", (9, 60, 104), (2, 16, 16)),
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed_forward(model, inputs, device) -> tuple[float, float]:
    """(seconds, peak allocated GB) of one forward."""
    _sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    model(**inputs)
    _sync(device)
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(device) / 1e9 if device.type == "cuda" else float("nan")
    return seconds, peak


def run_case(name: str, size: str, device: torch.device, dtype: torch.dtype, warmup: int, repeats: int) -> dict:
    """Settings are measured round-robin (baseline, scalar, energy, baseline, ...) so clock drift over the run
    affects all three alike; medians over `repeats`, peaks are the max over the repeats."""
    family, preset, real_latent, tiny_latent = CASES[name]
    frames, height, width = real_latent if size == "real" else tiny_latent
    start = time.perf_counter()
    model = build_transformer(family, size, dtype=dtype, device=device)
    if device.type == "cuda":
        torch.cuda.empty_cache()
    build_s = time.perf_counter() - start
    inputs = dummy_inputs(family, size, num_frames=frames, height=height, width=width, dtype=dtype, device=device,
                          text_tokens=None if family == "wan" else 256, generator=torch.Generator().manual_seed(0))
    settings = ("baseline", "scalar", "energy")
    samples: dict[str, list[tuple[float, float]]] = {s: [] for s in settings}
    modulated = {}
    with torch.inference_mode():
        for round_index in range(warmup + repeats):
            for setting in settings:
                config = ASMConfig.preset(preset, strategy="none" if setting == "baseline" else setting)
                with apply_asm(model, config) as handle:
                    modulated[setting] = len(handle.module_names)
                    sample = _timed_forward(model, inputs, device)
                if round_index >= warmup:
                    samples[setting].append(sample)
    result = {"model": name, "size": size, "latent": [frames, height, width], "build_s": round(build_s, 1)}
    base_s = statistics.median(s for s, _ in samples["baseline"])
    base_mem = max(m for _, m in samples["baseline"])
    result["baseline"] = {"seconds": base_s, "peak_gb": base_mem, "all_seconds": [s for s, _ in samples["baseline"]]}
    for setting in settings[1:]:
        seconds = statistics.median(s for s, _ in samples[setting])
        peak = max(m for _, m in samples[setting])
        result[setting] = {"seconds": seconds, "peak_gb": peak, "time_ratio": seconds / base_s,
                           "memory_ratio": peak / base_mem if device.type == "cuda" else None,
                           "modulated_modules": modulated[setting],
                           "all_seconds": [s for s, _ in samples[setting]]}
    del model, inputs
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="tiny models on CPU")
    parser.add_argument("--models", default=",".join(CASES), help=f"comma-separated subset of {list(CASES)}")
    parser.add_argument("--repeats", type=int, default=5, help="timed forwards per setting (median reported)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--output", type=Path, help="write the results as JSON here")
    args = parser.parse_args()

    size = "tiny" if args.tiny else "real"
    device = torch.device("cpu" if args.tiny else "cuda")
    dtype = torch.float32 if args.tiny else torch.bfloat16
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("real-size benchmark needs a CUDA GPU; use --tiny for the CPU smoke run")
    results = []
    for name in args.models.split(","):
        if name not in CASES:
            raise SystemExit(f"unknown model {name!r}; expected one of {list(CASES)}")
        result = run_case(name, size, device, dtype, args.warmup, args.repeats)
        results.append(result)
        print(f"{name} ({size}, latent {result['latent']}, build {result['build_s']} s): baseline "
              f"{result['baseline']['seconds']:.4f} s/forward, peak {result['baseline']['peak_gb']:.2f} GB")
        for strategy in ("scalar", "energy"):
            r = result[strategy]
            memory = f"{r['memory_ratio']:.4f}" if r["memory_ratio"] is not None else "n/a"
            print(f"  {strategy:6s} time x{r['time_ratio']:.4f}  peak memory x{memory}  "
                  f"({r['modulated_modules']} attention modules)", flush=True)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps({"device": str(device), "torch": torch.__version__,
                                           "gpu": torch.cuda.get_device_name(device) if device.type == "cuda"
                                           else None, "results": results}, indent=2))


if __name__ == "__main__":
    main()
