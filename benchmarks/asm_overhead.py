"""Overhead of ASM on one transformer forward: baseline vs scalar preset vs energy, time and peak memory.

Real size (GPU): Wan2.1-I2V-14B at 480x832, 81 frames (latent 21x60x104, 32,760 tokens) with the wan2.1
preset, and the FramePack transformer at its 640 bucket (480x832, one 9-latent-frame section with its clean
and 2x/4x history latents) with the framepack preset; random bf16 weights built directly on the GPU.
Targets: scalar <= 1.002, energy <= 1.03, extra peak memory <= 1 %.

`--compile` measures per-step time eager vs regionally compiled (`compile_repeated_blocks(fullgraph=True)`,
inductor on the GPU, aot_eager with --tiny), without ASM and with scalar and energy ASM, and the graphs compiled
over a full sweep of the denoising timesteps with each strategy on (40 steps for Wan, one 25-step section for FramePack; flow-matching
schedule, shift 3, so the sweep crosses the early window t > 900). Targets: compiled <= 0.88x eager on
Wan, scalar ASM under compile <= 1.002, 0 new graphs over the sweep; the compiled ASM output's difference from
eager is printed beside the bf16 noise floor (the same logits with gamma moved between Q and K), the bar for
making `generation.compile=regional` the default.

    python benchmarks/asm_overhead.py                 # real size, CUDA
    python benchmarks/asm_overhead.py --tiny          # tiny models on CPU (smoke check of the script)
    python benchmarks/asm_overhead.py --compile --models wan2.1-i2v-14b --memory-gb 80
    python benchmarks/asm_overhead.py --models "" --pipeline ltx-video,hunyuan-video-1.5,wan2.2   # newer baselines
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import statistics
import time
from pathlib import Path

import torch
from torch._dynamo.utils import counters

from omiti2v.asm import ASMConfig, apply_asm
from omiti2v.config_check import require_cuda
from omiti2v.generate.compile import compile_regions
from omiti2v.models.architectures import build_transformer, dummy_inputs

CONF = Path(__file__).resolve().parents[1] / "conf"
CASES = {
    # name: (family, preset, real-size latent (frames, height, width), tiny latent, denoising steps)
    "wan2.1-i2v-14b": ("wan", "wan2.1", (21, 60, 104), (2, 8, 8), 40),
    "framepack": ("framepack", "framepack", (9, 60, 104), (2, 16, 16), 25),
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


def _build_case(name: str, size: str, device: torch.device, dtype: torch.dtype):
    family, _, real_latent, tiny_latent, _ = CASES[name]
    frames, height, width = real_latent if size == "real" else tiny_latent
    start = time.perf_counter()
    model = build_transformer(family, size, dtype=dtype, device=device)
    if device.type == "cuda":
        torch.cuda.empty_cache()
    build_s = time.perf_counter() - start
    inputs = dummy_inputs(family, size, num_frames=frames, height=height, width=width, dtype=dtype, device=device,
                          text_tokens=None if family == "wan" else 256, generator=torch.Generator().manual_seed(0))
    return model, inputs, build_s, (frames, height, width)


def sweep_timesteps(steps: int, shift: float = 3.0) -> list[float]:
    """Flow-matching timesteps 1000 -> 0 with the usual shift (Wan 480p uses 3)."""
    sigmas = [1.0 - i / steps for i in range(steps)]
    return [1000.0 * shift * s / (1.0 + (shift - 1.0) * s) for s in sigmas]


def _at(inputs: dict, timestep: float) -> dict:
    return {**inputs, "timestep": torch.full_like(inputs["timestep"], timestep)}


STRATEGIES = ("scalar", "energy")


def run_compile_case(name: str, size: str, device: torch.device, dtype: torch.dtype, repeats: int,
                     backend: str) -> dict:
    """Eager vs compiled per-step time, without ASM and with scalar and energy ASM (round-robin medians at
    t = 999), then the graphs compiled over a full timestep sweep with each strategy on (every step timed: in
    and out of the window)."""
    model, inputs, build_s, latent = _build_case(name, size, device, dtype)
    configs = {"baseline": ASMConfig(strategy="none"),
               **{strategy: ASMConfig.preset(CASES[name][1], strategy=strategy) for strategy in STRATEGIES}}
    config = configs["scalar"]
    result: dict = {"model": name, "size": size, "latent": list(latent), "build_s": round(build_s, 1),
                    "backend": backend}

    def measure(label: str, rounds: int) -> None:
        samples: dict[str, list[float]] = {setting: [] for setting in configs}
        for _ in range(rounds):
            for setting in samples:
                with apply_asm(model, configs[setting]):
                    samples[setting].append(_timed_forward(model, inputs, device)[0])
        result[label] = {setting: statistics.median(values) for setting, values in samples.items()}

    def outputs() -> dict[str, torch.Tensor]:
        found = {}
        for strategy in STRATEGIES:
            with apply_asm(model, configs[strategy]):
                found[strategy] = model(**inputs)[0].float()
        return found

    # dynamo skips hook guards by default: a graph traced without ASM's hooks would serve the hooked blocks
    # too (ASM then raises ASMBypassedError). Guarding hooks keeps one graph per setting for the round-robin.
    with torch.inference_mode(), torch._dynamo.config.patch(skip_nnmodule_hook_guards=False):
        eager = outputs()  # also the warm-up
        with apply_asm(model, config) as handle:
            model(**inputs)
            multipliers = handle.logit_multipliers()
        # the bf16 noise floor: gamma moved from K to Q and back (the same logit multipliers, other roundings)
        swapped = dataclasses.replace(config, gamma_q=config.gamma_k, gamma_k=config.gamma_q,
                                      q_sites=config.k_sites, k_sites=config.q_sites)
        with apply_asm(model, swapped) as handle:
            floor_asm = model(**inputs)[0].float()
            moved = handle.logit_multipliers()
        same_logits = moved.keys() == multipliers.keys() and all(abs(moved[k] - multipliers[k]) <= 1e-6 * multipliers[k] for k in moved)
        measure("eager", repeats)
        compile_regions(model, fullgraph=True, backend=backend)
        counters.clear()
        start = time.perf_counter()
        measure("compiled", 1)  # compiles the block graph without and with each strategy
        result["compile_s"] = round(time.perf_counter() - start, 1)
        compiled = outputs()
        measure("compiled", repeats)
        steps = sweep_timesteps(CASES[name][4])
        result["sweep"] = {"steps": len(steps), "in_window": sum(config.step_active(t) for t in steps)}
        for strategy in STRATEGIES:
            graphs = counters["stats"]["unique_graphs"]
            with apply_asm(model, configs[strategy]):
                step_seconds = [_timed_forward(model, _at(inputs, t), device)[0] for t in steps]
            result["sweep"][strategy] = {"new_graphs": counters["stats"]["unique_graphs"] - graphs,
                                         "median_step_s": statistics.median(step_seconds)}
    result["compiled_vs_eager"] = result["compiled"]["baseline"] / result["eager"]["baseline"]
    for strategy in STRATEGIES:
        result[f"{strategy}_eager_ratio"] = result["eager"][strategy] / result["eager"]["baseline"]
        result[f"{strategy}_compiled_ratio"] = result["compiled"][strategy] / result["compiled"]["baseline"]
        result[f"{strategy}_compiled_max_abs_diff_vs_eager"] = float((compiled[strategy] - eager[strategy]).abs().max())
    result["eager_asm_max_abs"] = float(eager["scalar"].abs().max())
    result["noise_floor_max_abs_diff"] = float((floor_asm - eager["scalar"]).abs().max()) if same_logits else None
    return result


def print_compile_result(result: dict) -> None:
    eager, compiled, sweep = result["eager"], result["compiled"], result["sweep"]
    print(f"{result['model']} ({result['size']}, latent {result['latent']}, build {result['build_s']} s, "
          f"compile {result['compile_s']} s, backend {result['backend']})")
    print(f"  eager    baseline {eager['baseline']:.4f} s/step  compiled baseline {compiled['baseline']:.4f} s/step  "
          f"compiled vs eager x{result['compiled_vs_eager']:.4f}")
    for strategy in STRATEGIES:
        print(f"  {strategy:6s} eager {eager[strategy]:.4f} s/step (x{result[f'{strategy}_eager_ratio']:.4f})  "
              f"compiled {compiled[strategy]:.4f} s/step (x{result[f'{strategy}_compiled_ratio']:.4f}); compiled vs "
              f"eager output max |diff| {result[f'{strategy}_compiled_max_abs_diff_vs_eager']:.3g}; sweep of "
              f"{sweep['steps']} steps ({sweep['in_window']} in the window): new graphs "
              f"{sweep[strategy]['new_graphs']}, median {sweep[strategy]['median_step_s']:.4f} s/step")
    print(f"  max |output| {result['eager_asm_max_abs']:.3g}; bf16 noise floor (scalar, gamma moved between Q and "
          f"K): {result['noise_floor_max_abs_diff']}", flush=True)


def run_case(name: str, size: str, device: torch.device, dtype: torch.dtype, warmup: int, repeats: int) -> dict:
    """One synthetic-input case of CASES: baseline vs the preset's scalar and energy ASM."""
    model, inputs, build_s, (frames, height, width) = _build_case(name, size, device, dtype)
    preset = CASES[name][1]
    configs = {setting: ASMConfig.preset(preset, strategy="none" if setting == "baseline" else setting)
               for setting in ("baseline", "scalar", "energy")}
    result = {"model": name, "size": size, "latent": [frames, height, width], "build_s": round(build_s, 1)}
    result.update(compare_settings(model, inputs, configs, device, warmup, repeats))
    del model, inputs
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return result


def run_pipeline_case(name: str, device: torch.device, warmup: int, repeats: int) -> dict:
    """A registered baseline (conf/model/NAME.yaml, e.g. a newer one without a CASES entry): its pipeline is built
    as the planner builds it (random weights), its transformer's first call captured, and baseline vs scalar ASM
    (the model's preset, resolved exactly as a run resolves it) timed on those inputs."""
    from hydra import compose, initialize_config_dir

    from omiti2v.generate.planner import first_transformer_call
    from omiti2v.runs import to_plain

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        plain, scalar = (compose("config", overrides=["data=mini", f"model={name}", f"asm={asm}", f"device={device.type}"])
                         for asm in ("none", "scalar"))
    start = time.perf_counter()
    generator, inputs = first_transformer_call(plain)
    build_s = time.perf_counter() - start
    height, width = inputs.pop("_size")
    config = ASMConfig.from_hydra(generator.settings["asm_preset"], to_plain(scalar.asm), to_plain(scalar.schedule),
                                  generator.settings["name"])
    configs = {"baseline": ASMConfig(strategy="none"), "scalar": config}
    result = {"model": name, "size": "pipeline", "video": [height, width], "build_s": round(build_s, 1)}
    result.update(compare_settings(generator.pipe.transformer, inputs, configs, device, warmup, repeats))
    del generator, inputs
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return result


def compare_settings(model, inputs: dict, configs: dict[str, ASMConfig], device: torch.device, warmup: int,
                     repeats: int) -> dict:
    """Settings are measured round-robin (baseline, scalar, energy, baseline, ...) so clock drift over the run
    affects all alike; medians over `repeats`, peaks are the max over the repeats. `configs` starts with the
    baseline."""
    settings = tuple(configs)
    samples: dict[str, list[tuple[float, float]]] = {s: [] for s in settings}
    modulated = {}
    with torch.inference_mode():
        for round_index in range(warmup + repeats):
            for setting in settings:
                with apply_asm(model, configs[setting]) as handle:
                    modulated[setting] = len(handle.module_names)
                    sample = _timed_forward(model, inputs, device)
                if round_index >= warmup:
                    samples[setting].append(sample)
    result = {}
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
    return result


def print_case_result(result: dict) -> None:
    shape = f"latent {result['latent']}" if "latent" in result else f"video {result['video']}"
    print(f"{result['model']} ({result['size']}, {shape}, build {result['build_s']} s): baseline "
          f"{result['baseline']['seconds']:.4f} s/forward, peak {result['baseline']['peak_gb']:.2f} GB")
    for strategy in ("scalar", "energy"):
        if strategy in result:
            r = result[strategy]
            memory = f"{r['memory_ratio']:.4f}" if r["memory_ratio"] is not None else "n/a"
            print(f"  {strategy:6s} time x{r['time_ratio']:.4f}  peak memory x{memory}  "
                  f"({r['modulated_modules']} attention modules)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="tiny models on CPU")
    parser.add_argument("--models", default=",".join(CASES), help=f"comma-separated subset of {list(CASES)} ('' for none)")
    parser.add_argument("--pipeline", default="", help="comma-separated conf/model names timed through their pipeline's "
                        "first transformer call (random weights; --tiny uses NAME-tiny), e.g. ltx-video,wan2.2")
    parser.add_argument("--repeats", type=int, default=5, help="timed forwards per setting (median reported)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--output", type=Path, help="write the results as JSON here")
    parser.add_argument("--compile", action="store_true", help="eager vs regional compile, with/without ASM")
    parser.add_argument("--memory-gb", type=float, help="cap this process's GPU memory (e.g. 80 on an H200)")
    args = parser.parse_args()

    size = "tiny" if args.tiny else "real"
    device = torch.device("cpu" if args.tiny else "cuda")
    dtype = torch.float32 if args.tiny else torch.bfloat16
    if device.type == "cuda":
        require_cuda("benchmarks/asm_overhead.py", "use --tiny for the CPU smoke run")
    if args.memory_gb and device.type == "cuda":
        total = torch.cuda.get_device_properties(device).total_memory / 1e9
        torch.cuda.set_per_process_memory_fraction(min(1.0, args.memory_gb / total), torch.cuda.current_device())
    results = []
    for name in filter(None, args.models.split(",")):
        if name not in CASES:
            raise SystemExit(f"unknown model {name!r}; expected one of {list(CASES)}")
        if args.compile:
            results.append(run_compile_case(name, size, device, dtype, min(args.repeats, 3),
                                            "aot_eager" if args.tiny else "inductor"))
            print_compile_result(results[-1])
            gc.collect()
            torch.cuda.empty_cache() if device.type == "cuda" else None
            continue
        results.append(run_case(name, size, device, dtype, args.warmup, args.repeats))
        print_case_result(results[-1])
    for name in filter(None, args.pipeline.split(",")):
        results.append(run_pipeline_case(f"{name}-tiny" if args.tiny else name, device, args.warmup, args.repeats))
        print_case_result(results[-1])
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps({"device": str(device), "torch": torch.__version__,
                                           "gpu": torch.cuda.get_device_name(device) if device.type == "cuda"
                                           else None, "results": results}, indent=2, allow_nan=False))


if __name__ == "__main__":
    main()
