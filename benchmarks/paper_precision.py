"""Peak GPU memory of each precision choice of the paper profile at real size (random weights built on the GPU).

Wan2.1-I2V-14B, one generation step at 480x832x81 (latent 21x60x104, 32,760 tokens; guidance 1.0: one forward):
  bf16            transformer weights in bf16 (the harness's default)
  fp32_autocast   float32 weights under bf16 autocast, time embedding and head in float32 (the official code)
Each step runs with only the transformer resident (the encoders are offloaded or done). A variant that runs out of
memory under the cap reports `oom` and a peak extrapolated from a 2-block build (the forward's activations do not
grow with depth): its full-depth weights + (2-block peak - 2-block weights); the bf16 row prints both figures, so
the extrapolation's accuracy is on the page. Also its CLIP image encoder on one 224x224 image, fp32 vs fp16.
FramePack at its 640 bucket (480x832, one section: 9 latent frames with the clean and 2x/4x history latents, 256
text tokens): the transformer step with proj_out in bf16 vs in float32 (official), and the Llama and CLIP-L text
encoders, SigLIP and one section's VAE decode (18 latent frames, tiled) in bf16 vs fp16 (official).
Every peak is torch.cuda.max_memory_allocated over the measured call, weights resident included.

    python benchmarks/paper_precision.py --memory-gb 80     # real size, one 80 GB-capped GPU (~3 min on an H100)
    python benchmarks/paper_precision.py --tiny             # tiny models on the CPU (script check; no peaks)
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from collections.abc import Callable
from functools import partial

import torch

from omiti2v.models import components as C
from omiti2v.models.architectures import build_transformer, dummy_inputs
from omiti2v.models.precision import apply_float32_autocast, apply_float32_output_projection, cast_module

WAN_LATENT = {"real": (21, 60, 104), "tiny": (2, 8, 8)}          # 81 frames at 480x832
FRAMEPACK_LATENT = {"real": (9, 60, 104), "tiny": (2, 16, 16)}   # one section at the 640 bucket (480x832)
VAE_SECTION_FRAMES = {"real": 18, "tiny": 2}                     # latent frames one section decode sees


def gigabytes(module: torch.nn.Module) -> float:
    return round(sum(p.numel() * p.element_size() for p in module.parameters()) / 1e9, 2)


def release(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def measure(call: Callable[[], object], device: torch.device) -> dict:
    """Seconds and peak allocated GB of one call (weights resident included); `oom` when the cap refuses it."""
    release(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    try:
        with torch.no_grad():
            call()
        oom = False
    except torch.cuda.OutOfMemoryError:
        oom = True
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    peak = round(torch.cuda.max_memory_allocated(device) / 1e9, 2) if device.type == "cuda" else None
    release(device)
    return {"seconds": round(time.perf_counter() - start, 2), "peak_gb": peak, "oom": oom}


def wan_transformer(size: str, variant: str, device: torch.device, **overrides) -> torch.nn.Module:
    if variant == "bf16":
        with C.building(device, torch.bfloat16):
            return build_transformer("wan", size, dtype=torch.bfloat16, device=device, **overrides)
    model = build_transformer("wan", size, dtype=torch.float32, device=device, **overrides)
    apply_float32_autocast(model, torch.bfloat16)
    return model


def meta_weights_gb(size: str, variant: str, **overrides) -> float:
    """The weights of a Wan build, counted on the meta device (nothing allocated)."""
    dtype = torch.bfloat16 if variant == "bf16" else torch.float32
    return gigabytes(build_transformer("wan", size, dtype=dtype, device="meta", **overrides))


def wan_step(size: str, variant: str, device: torch.device) -> dict:
    """One forward at full depth, and the 2-block extrapolation of its peak."""
    frames, height, width = WAN_LATENT[size]
    dtype = torch.bfloat16 if variant == "bf16" else torch.float32
    result = {}
    for label, overrides in (("full", {}), ("two_blocks", {"num_layers": 2})):
        cell = {"weights_gb": meta_weights_gb(size, variant, **overrides)}
        try:
            model = wan_transformer(size, variant, device, **overrides)
        except torch.cuda.OutOfMemoryError:
            result[label] = {**cell, "oom": True, "peak_gb": None}
            release(device)
            continue
        inputs = dummy_inputs("wan", size, num_frames=frames, height=height, width=width, dtype=dtype, device=device,
                              generator=torch.Generator().manual_seed(0))
        result[label] = {**cell, **measure(partial(model, **inputs), device)}
        del model, inputs
        release(device)
    two = result["two_blocks"]
    if two["peak_gb"] is not None:
        result["extrapolated_peak_gb"] = round(result["full"]["weights_gb"] + two["peak_gb"] - two["weights_gb"], 2)
    return result


def encoder_peaks(build: Callable[[], torch.nn.Module], run: Callable[[torch.nn.Module, torch.dtype], object],
                  dtypes: tuple[torch.dtype, ...], device: torch.device) -> dict:
    """The part built once, then measured in each dtype (cast in place between the measurements)."""
    with C.building(device, dtypes[0]):
        model = build()
    out = {}
    for dtype in dtypes:
        cast_module(model, dtype)
        out[str(dtype).removeprefix("torch.")] = {"weights_gb": gigabytes(model),
                                                  **measure(partial(run, model, dtype), device)}
    del model
    release(device)
    return out


def wan_case(size: str, device: torch.device) -> dict:
    out = {variant: wan_step(size, variant, device) for variant in ("bf16", "fp32_autocast")}
    image = 224 if size == "real" else 32
    out["clip_image_encoder"] = encoder_peaks(
        lambda: C.clip_vision_encoder(size, 1280 if size == "real" else 32)[0],
        lambda model, dtype: model(pixel_values=torch.randn(1, 3, image, image, device=device, dtype=dtype),
                                   output_hidden_states=True),
        (torch.float32, torch.float16), device)
    return out


def framepack_case(size: str, device: torch.device) -> dict:
    frames, height, width = FRAMEPACK_LATENT[size]
    with C.building(device, torch.bfloat16):
        model = build_transformer("framepack", size, dtype=torch.bfloat16, device=device)
    inputs = dummy_inputs("framepack", size, num_frames=frames, height=height, width=width, text_tokens=256,
                          dtype=torch.bfloat16, device=device, generator=torch.Generator().manual_seed(0))
    out = {"step": {"proj_out_bf16": {"weights_gb": gigabytes(model), **measure(partial(model, **inputs), device)}}}
    apply_float32_output_projection(model)
    out["step"]["proj_out_fp32"] = {"weights_gb": gigabytes(model), **measure(partial(model, **inputs), device)}
    config = model.config
    del model, inputs
    release(device)
    dtypes = (torch.bfloat16, torch.float16)
    vocab = 128320 if size == "real" else C.TINY_VOCAB
    out["llama_text_encoder"] = encoder_peaks(
        lambda: C.llama_encoder(size, config.text_embed_dim),
        lambda model, dtype: model(input_ids=torch.randint(3, vocab, (1, 256), device=device), output_hidden_states=True),
        dtypes, device)
    out["clip_text_encoder"] = encoder_peaks(
        lambda: C.clip_text_encoder(size, config.pooled_projection_dim),
        lambda model, dtype: model(input_ids=torch.randint(3, 49408 if size == "real" else C.TINY_VOCAB, (1, 77),
                                                           device=device)),
        dtypes, device)
    pixels = 384 if size == "real" else 32
    out["siglip_image_encoder"] = encoder_peaks(
        lambda: C.siglip_vision_encoder(size, config.image_proj_dim)[0],
        lambda model, dtype: model(pixel_values=torch.randn(1, 3, pixels, pixels, device=device, dtype=dtype)),
        dtypes, device)

    def tiled_vae():
        vae = C.hunyuan_vae(size, config.out_channels)
        vae.enable_tiling()
        return vae

    section = (1, config.out_channels, VAE_SECTION_FRAMES[size], height, width)
    out["vae_section_decode"] = encoder_peaks(
        tiled_vae, lambda vae, dtype: vae.decode(torch.randn(*section, device=device, dtype=dtype)), dtypes, device)
    return out


def ratio(a, b) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def summarize(wan: dict, framepack: dict, cap: float | None) -> dict:
    bf16, fp32 = wan["bf16"], wan["fp32_autocast"]
    fp32_peak = fp32["full"]["peak_gb"] if not fp32["full"]["oom"] else fp32.get("extrapolated_peak_gb")
    steps = framepack["step"]
    parts = ("llama_text_encoder", "clip_text_encoder", "siglip_image_encoder", "vae_section_decode")
    return {
        "wan_fp32_autocast_peak_gb": fp32_peak,
        "wan_fp32_autocast_measured": not fp32["full"]["oom"],
        "wan_fp32_autocast_over_bf16_peak": ratio(fp32_peak, bf16["full"]["peak_gb"]),
        "wan_fp32_autocast_fits": None if cap is None or fp32_peak is None else bool(fp32_peak <= cap and not fp32["full"]["oom"]),
        "wan_bf16_extrapolated_over_measured": ratio(bf16.get("extrapolated_peak_gb"), bf16["full"]["peak_gb"]),
        "wan_clip_fp16_over_fp32_peak": ratio(wan["clip_image_encoder"]["float16"]["peak_gb"],
                                              wan["clip_image_encoder"]["float32"]["peak_gb"]),
        "framepack_proj_out_fp32_over_bf16_peak": ratio(steps["proj_out_fp32"]["peak_gb"], steps["proj_out_bf16"]["peak_gb"]),
        **{f"framepack_{p}_fp16_over_bf16_peak": ratio(framepack[p]["float16"]["peak_gb"], framepack[p]["bfloat16"]["peak_gb"])
           for p in parts},
    }


def print_table(wan: dict, framepack: dict) -> None:
    def row(label: str, cell: dict) -> None:
        peak = "OOM" if cell.get("oom") else f"{cell['peak_gb']}" if cell.get("peak_gb") is not None else "-"
        print(f"  {label:44s} weights {cell.get('weights_gb')!s:>7} GB   peak {peak:>7} GB   {cell.get('seconds', '-')} s")

    print("Wan2.1-I2V-14B, one step at 480x832x81 (only the transformer resident)")
    for variant in ("bf16", "fp32_autocast"):
        row(f"{variant} step peak", wan[variant]["full"])
        print(f"  {variant + ' step peak, extrapolated from 2 blocks':44s} {wan[variant].get('extrapolated_peak_gb')} GB")
    for dtype, cell in wan["clip_image_encoder"].items():
        row(f"CLIP image encoder {dtype}", cell)
    print("FramePack, 640 bucket, one section")
    for label, cell in framepack["step"].items():
        row(f"step peak, {label}", cell)
    for part in ("llama_text_encoder", "clip_text_encoder", "siglip_image_encoder", "vae_section_decode"):
        for dtype, cell in framepack[part].items():
            row(f"{part} {dtype}", cell)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="tiny models on the CPU")
    parser.add_argument("--memory-gb", type=float, default=None, help="cap this process's GPU memory (GB = 1e9 bytes)")
    args = parser.parse_args()
    size = "tiny" if args.tiny else "real"
    if not args.tiny:
        from omiti2v.config_check import require_cuda

        require_cuda("benchmarks/paper_precision.py", "run it with --tiny on a CPU")
    device = torch.device("cpu") if args.tiny else torch.device("cuda", torch.cuda.current_device())
    if args.memory_gb and device.type == "cuda":
        total = torch.cuda.get_device_properties(device).total_memory
        torch.cuda.set_per_process_memory_fraction(min(1.0, args.memory_gb * 1e9 / total), device)
    start = time.perf_counter()
    wan = wan_case(size, device)
    framepack = framepack_case(size, device)
    print_table(wan, framepack)
    cap = args.memory_gb if device.type == "cuda" else None
    print(json.dumps({"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu", "size": size,
                      "memory_cap_gb": cap, "summary": summarize(wan, framepack, cap), "wan": wan,
                      "framepack": framepack, "wall_s": round(time.perf_counter() - start, 1)}))


if __name__ == "__main__":
    main()
