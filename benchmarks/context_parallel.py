"""Context parallelism for one Wan2.1 forward: N-GPU output vs 1-GPU output, bf16 noise floor, time per step.

Every rank builds the same random-weight Wan2.1-I2V-14B transformer (real size; rank 0's weights are broadcast)
and the same inputs (latent 21x60x104, i.e. 480x832 and 81 frames: 32,760 tokens), then computes with ASM
(the wan2.1 preset, scalar) at t = 999, inside the early window:
  * the 1-GPU output, and the time of that step;
  * the noise floor: the same ASM with gamma_q and gamma_k swapped between the image and text branches
    (the same logits, other roundings); their difference is what bf16 alone makes;
  * with N > 1 processes, the same forward under diffusers' context parallelism, set up by the generation
    stage's own code (`omiti2v.generate.parallel.enable_context_parallel`), and its time per step.
It also checks step gating under CP: at t = 500 (window closed) the ASM output equals the plain output exactly.

    torchrun --nproc-per-node 2 benchmarks/context_parallel.py            # 2 GPUs (ulysses; --mode ring)
    python benchmarks/context_parallel.py                                 # 1 GPU: reference, floor, time
    torchrun --nproc-per-node 2 benchmarks/context_parallel.py --tiny     # tiny model, CPU, gloo

On CPU only Ulysses runs: ring attention merges partial results by their log-sum-exp, which diffusers'
native (CPU) backend does not return.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import time
from pathlib import Path

import torch
import torch.distributed as dist

from omiti2v.asm import ASMConfig, apply_asm
from omiti2v.config_check import require_cuda
from omiti2v.generate import parallel
from omiti2v.models.architectures import build_transformer, dummy_inputs

LATENT = {"real": (21, 60, 104), "tiny": (2, 8, 8)}
EARLY, LATE = 999.0, 500.0  # the wan2.1 preset's window is t > 900


def relative_l2(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.float(), b.float()
    return float((a - b).norm() / b.norm())


def max_abs(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).abs().max())


def swapped_placement(config: ASMConfig) -> ASMConfig:
    """The same logit multiplier at every site with gamma moved between Q and K (the wan2.1 preset: gamma_q on
    the image branch, gamma_k on the text branch, both 1.35, become K on the image and Q on the text branch)."""
    if config.gamma_q != config.gamma_k:
        raise ValueError("swapping Q and K sites keeps the logits only when gamma_q == gamma_k")
    return dataclasses.replace(config, q_sites=config.k_sites, k_sites=config.q_sites)


def timed(model, inputs: dict, device: torch.device, repeats: int) -> tuple[torch.Tensor, float]:
    """(output, median seconds) of `repeats` forwards after one warm-up."""
    seconds = []
    for index in range(repeats + 1):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        out = model(**inputs)[0]
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if index:
            seconds.append(time.perf_counter() - start)
    return out, statistics.median(seconds)


def tokens_seen_by_last_block(model, inputs: dict) -> int:
    """Sequence length the last block receives: all tokens on one GPU, 1/N of them under context parallelism
    (block 0 splits them inside its own forward, after any pre-hook)."""
    seen = []
    handle = model.blocks[-1].register_forward_pre_hook(lambda module, args: seen.append(args[0].shape[1]))
    try:
        model(**inputs)
    finally:
        handle.remove()
    return seen[0]


def run(size: str, mode: str, backend: str | None, repeats: int) -> dict:
    cfg = {"parallel": {"context": _world_size()}}
    layout = parallel.resolve_layout(cfg)
    parallel.start(layout, parallel.parallel_settings(cfg), ["generate"])
    device = torch.device("cpu") if size == "tiny" else torch.device("cuda", torch.cuda.current_device())
    dtype = torch.float32 if size == "tiny" else torch.bfloat16
    model = build_transformer("wan", size, dtype=dtype, device=device, seed=0)
    if device.type == "cuda":
        torch.cuda.empty_cache()
    if layout.world > 1:
        for tensor in model.state_dict().values():
            dist.broadcast(tensor, src=0)
    if backend:
        model.set_attention_backend(backend)
    frames, height, width = LATENT[size]

    def inputs_at(t: float) -> dict:
        return dummy_inputs("wan", size, num_frames=frames, height=height, width=width, timestep=t, dtype=dtype,
                            device=device, generator=torch.Generator().manual_seed(0))

    early, late = inputs_at(EARLY), inputs_at(LATE)
    config = ASMConfig.preset("wan2.1")
    result: dict = {"size": size, "latent": [frames, height, width], "dtype": str(dtype), "world": layout.world,
                    "mode": mode, "attention_backend": backend}
    with torch.inference_mode():
        plain = model(**early)[0]
        plain_late = model(**late)[0]
        with apply_asm(model, config) as handle:
            result["modulated_modules"] = len(handle.module_names)
            single, result["seconds_1gpu"] = timed(model, early, device, repeats)
            single_late = model(**late)[0]
        with apply_asm(model, swapped_placement(config)):
            floor = model(**early)[0]
        result.update(asm_effect_rel=relative_l2(single, plain), floor_rel=relative_l2(floor, single),
                      floor_max_abs=max_abs(floor, single), window_closed_exact_1gpu=bool(torch.equal(single_late,
                                                                                                      plain_late)),
                      tokens_1gpu=tokens_seen_by_last_block(model, early))
        if layout.world > 1:
            parallel.enable_context_parallel(model, layout, {"mode": mode, "attention_backend": None})
            result["tokens_per_rank"] = tokens_seen_by_last_block(model, early)
            cp_plain_late = model(**late)[0]
            with apply_asm(model, config):
                cp, result["seconds_ngpu"] = timed(model, early, device, repeats)
                cp_late = model(**late)[0]
            result.update(cp_rel=relative_l2(cp, single), cp_max_abs=max_abs(cp, single),
                          cp_late_rel=relative_l2(cp_late, single_late),
                          window_closed_exact_ngpu=bool(torch.equal(cp_late, cp_plain_late)),
                          speedup=result["seconds_1gpu"] / result["seconds_ngpu"])
            result["within_floor"] = result["cp_rel"] <= result["floor_rel"]
    if device.type == "cuda":
        result["gpu"] = torch.cuda.get_device_name(device)
        result["peak_gb"] = round(torch.cuda.max_memory_allocated(device) / 1e9, 2)
    return result


def _world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", 1))


def format_result(r: dict) -> str:
    lines = [f"wan2.1 {r['size']} latent {r['latent']} {r['dtype']}, {r['world']} process(es), "
             f"{r['modulated_modules']} modulated attention modules",
             f"  1 GPU:  {r['seconds_1gpu']:.3f} s/step; ASM effect (rel L2 vs no ASM) {r['asm_effect_rel']:.3e}; "
             f"window closed at t={LATE:.0f} -> exact: {r['window_closed_exact_1gpu']}",
             f"  noise floor (gamma on Q vs on K, swapped branches): rel L2 {r['floor_rel']:.3e}, "
             f"max abs {r['floor_max_abs']:.3e}"]
    if r["world"] > 1:
        lines += [f"  {r['world']} GPUs ({r['mode']}): {r['seconds_ngpu']:.3f} s/step, speedup x{r['speedup']:.2f}; "
                  f"tokens per rank {r['tokens_per_rank']} of {r['tokens_1gpu']}",
                  f"  CP vs 1 GPU: rel L2 {r['cp_rel']:.3e}, max abs {r['cp_max_abs']:.3e} -> within floor: "
                  f"{r['within_floor']}; t={LATE:.0f}: rel L2 {r['cp_late_rel']:.3e}, window closed -> exact: "
                  f"{r['window_closed_exact_ngpu']}"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="tiny model on CPU (gloo)")
    parser.add_argument("--mode", choices=parallel.MODES, default="ulysses")
    parser.add_argument("--attention-backend", default=None,
                        help="diffusers attention backend for every forward (ring on GPUs: default _native_cudnn)")
    parser.add_argument("--repeats", type=int, default=2, help="timed forwards per setting (median)")
    parser.add_argument("--output", type=Path, help="write the result as JSON here (rank 0)")
    args = parser.parse_args()
    if not args.tiny:
        require_cuda("benchmarks/context_parallel.py", "use --tiny for the CPU run")
    backend = args.attention_backend
    if backend is None and args.mode == "ring" and not args.tiny and _world_size() > 1:
        backend = "_native_cudnn"  # ring merges partial attentions by their LSE; the native backend has none
    result = run("tiny" if args.tiny else "real", args.mode, backend, args.repeats)
    if not dist.is_initialized() or dist.get_rank() == 0:
        print(format_result(result), flush=True)
        if args.output:
            args.output.parent.mkdir(parents=True, exist_ok=True)
            args.output.write_text(json.dumps({"torch": torch.__version__, **result}, indent=2))
    if dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
