"""Cost planner: time one denoising step of the real-size model (random weights) and extrapolate to a sweep.

The pipeline runs on a synthetic image of the benchmark's typical size until its first transformer call; that
call's exact inputs (token count, text length, timestep, FramePack's clean latents) are captured, then the
transformer (with ASM installed as configured) is run on them: one warm-up, then `repeats` timed forwards.
When ASM acts in a step window only, the forward is also timed at a timestep outside the window and the video
estimate weights both by the number of steps the schedule spends in and out of the window.
With `generation.compile=regional` the timed transformer is the compiled one (the warm-up forward compiles it),
so planning a config with and without it gives both speeds; the cost records which (`compile`).
Estimates cover the transformer only (text/image encoders and the VAE run once per video and are excluded).
Guidance counts through the forwards per step (Wan2.1 at guidance 1.0: one; CFG 5: two; a guidance method of
conf/guidance/: its mean over the schedule, its own overhead beyond them is benchmarks/guidance_cost.py's). A step cache
(TeaCache on FramePack) is removed before timing, so a forward is a full one, and the video estimate assumes
`plan.teacache_computed_fraction` of the calls run the block stack (default 0.6: FramePack's README gives
1.5 vs 2.5 s per frame with/without TeaCache on an RTX 4090); the sidecars of a real run record the true share.
"""

from __future__ import annotations

import gc
import inspect
import math
import time
from typing import Any

import torch
from omegaconf import DictConfig
from PIL import Image

from omiti2v.cache import teacache_handle
from omiti2v.models import baseline_for

from ..devices import resolve_device
from ..errors import SetupError
from ..runs import to_plain
from ..seeds import base_seed
from .costs_table import StepCost
from .runner import Generator

BENCHMARK_SIZE = 367  # samples in OmitI2V
TEACACHE_COMPUTED_FRACTION = 0.6  # FramePack README: 1.5 s/frame with TeaCache vs 2.5 s without (RTX 4090)


class _Captured(Exception):
    """Raised from the transformer's pre-hook to stop the pipeline once the first call's inputs are known."""


def _capture_first_call(generator: Generator, image: Image.Image, prompt: str) -> dict:
    pipe, baseline, settings = generator.pipe, generator.baseline, generator.settings
    captured: dict[str, Any] = {}

    def grab(module, args, kwargs):
        # Positional arguments (EasyAnimate passes latents and timestep so) become keywords by the signature.
        captured.update(inspect.signature(module.forward).bind(*args, **kwargs).arguments)
        raise _Captured

    image, height, width = baseline.prepare_image(image, settings)
    kwargs = baseline.call_kwargs(pipe, image, prompt, height, width, settings)
    kwargs["generator"] = torch.Generator("cpu").manual_seed(0)
    handle = pipe.transformer.register_forward_pre_hook(grab, with_kwargs=True)
    try:
        pipe(**kwargs)
    except _Captured:
        pass
    finally:
        handle.remove()
    if not captured:
        raise RuntimeError(f"{baseline.name}: the pipeline finished without calling its transformer")
    captured["_size"] = (height, width)
    return captured


def _peak_gb(device: str) -> float | None:
    return round(torch.cuda.max_memory_allocated(device) / 1e9, 2) if device.startswith("cuda") else None


def _park_encoders(pipe, device: str) -> None:
    """Move every module but the transformer to the CPU, so the step is measured as the sampler runs it
    (encoders done, or offloaded with model CPU offload) and the peak is the transformer's own."""
    if not device.startswith("cuda"):
        return
    for name, part in pipe.components.items():
        if isinstance(part, torch.nn.Module) and name != "transformer":
            part.to("cpu")
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)


def _timed_forward(transformer, inputs: dict, repeats: int, device: str) -> float:
    def sync():
        if device.startswith("cuda"):
            torch.cuda.synchronize(device)

    with torch.no_grad():
        transformer(**inputs)  # warm-up: kernels, offload hooks, caches
        sync()
        start = time.perf_counter()
        for _ in range(repeats):
            transformer(**inputs)
        sync()
    return (time.perf_counter() - start) / repeats


def _video_tokens(transformer, hidden_states: torch.Tensor) -> int:
    if hidden_states.ndim == 3:  # already patchified by the pipeline (LTX-Video): (batch, tokens, channels)
        return hidden_states.shape[1]
    patch = transformer.config.get("patch_size", 1)
    pt, ph, pw = (patch if isinstance(patch, (tuple, list)) else (transformer.config.get("patch_size_t", 1) or 1, patch, patch))
    _, _, f, h, w = hidden_states.shape
    return math.ceil(f / pt) * (h // ph) * (w // pw)


def _schedule_timesteps(pipe, steps: int) -> list[float]:
    """The timesteps the sampler visits (1000 -> 0), to count steps inside the ASM window."""
    scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config)
    try:
        scheduler.set_timesteps(steps)
    except (TypeError, ValueError):  # schedulers needing sigmas/mu: fall back to evenly spaced steps
        return [1000.0 * (1 - k / steps) for k in range(steps)]
    return [float(t) for t in scheduler.timesteps]


def first_transformer_call(cfg: DictConfig, image_size: tuple[int, int] = (832, 480),
                           prompt: str = "a person walks out of the scene") -> tuple[Generator, dict]:
    """The run's generator (pipeline, ASM and compile as configured; pretrained weights become random ones) and
    the keyword inputs of its transformer's first call on a synthetic image of `image_size` (key `_size`: the
    pipeline's height and width)."""
    baseline = baseline_for(cfg.model)
    settings = baseline.settings(cfg.model)
    if settings["weights"] == "pretrained":
        settings["weights"] = "random"  # planning never downloads: same architecture, random weights
    device = resolve_device(str(cfg.get("device", "auto")))
    if settings["weights"] != "tiny" and not device.startswith("cuda"):
        raise SetupError(f"plan: a real-size {settings['name']} build needs a CUDA GPU (device resolved to {device}); "
                         f"plan model={settings['name'].removesuffix('-tiny')}-tiny on a CPU, or read the published "
                         "figures in docs/performance.md")
    if device.startswith("cuda"):
        torch.empty(0, device=device)  # create the CUDA context: the peak counters need it
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    generator = Generator(cfg, baseline, settings, device, base_seed(cfg, settings))
    gradient = Image.linear_gradient("L").resize(image_size).convert("RGB")
    return generator, _capture_first_call(generator, gradient, prompt)


def plan_config(cfg: DictConfig, samples: int | None = None, repeats: int = 2,
                image_size: tuple[int, int] = (832, 480), prompt: str = "a person walks out of the scene") -> StepCost:
    """StepCost of cfg.model x cfg.asm x cfg.schedule; real-size random weights unless the config asks for tiny."""
    plan_cfg = to_plain(cfg.get("plan")) or {}
    samples = int(samples or plan_cfg.get("samples") or BENCHMARK_SIZE)
    repeats = int(plan_cfg.get("repeats", repeats))
    image_size = tuple(plan_cfg.get("image_size", image_size))
    generator, inputs = first_transformer_call(cfg, image_size, prompt)
    baseline, settings, device = generator.baseline, generator.settings, generator.device
    try:
        height, width = inputs.pop("_size")
        transformer = generator.pipe.transformer
        pipeline_peak = _peak_gb(device)
        cache = teacache_handle(transformer)
        if cache is not None:
            cache.remove()  # time full forwards; the skipped share enters through `computed`
        if generator.guidance is not None:
            generator.guidance.remove()  # time one forward; a guidance method's passes enter as forwards per step
        computed = baseline.computed_fraction(
            settings, float(plan_cfg.get("teacache_computed_fraction", TEACACHE_COMPUTED_FRACTION)))
        _park_encoders(generator.pipe, device)
        per_forward = _timed_forward(transformer, inputs, repeats, device)
        sampling = settings["sampling"]
        steps = int(sampling["num_inference_steps"])
        timesteps = _schedule_timesteps(generator.pipe, steps)
        asm = generator.asm_config
        active = steps if asm is None else sum(asm.step_active(t) for t in timesteps)
        outside = None
        if asm is not None and active < steps:
            late = dict(inputs, timestep=torch.ones_like(inputs["timestep"]))
            outside = _timed_forward(transformer, late, repeats, device)
        forwards = generator.method["forwards_per_step"]  # the model's own CFG, or the guidance method's
        calls_per_schedule = baseline.denoising_calls(sampling) // steps  # FramePack: sections
        per_schedule = forwards * (active * per_forward + (steps - active) * (outside if outside is not None else per_forward))
        per_video = per_schedule * calls_per_schedule * computed
        peak = _peak_gb(device)
        cost = StepCost(
            model=settings["name"], asm=str(cfg.asm.get("name", "none")) if "asm" in cfg else "none",
            schedule=str(cfg.schedule.get("name", "")) if "schedule" in cfg else "", device=_device_name(device),
            height=height, width=width, frames=baseline.output_frames(sampling, transformer.config),
            video_tokens=_video_tokens(transformer, inputs["hidden_states"]),
            seconds_per_forward=round(per_forward, 4),
            seconds_per_forward_outside_window=None if outside is None else round(outside, 4),
            forwards_per_step=forwards, seconds_per_step=round(forwards * per_forward, 4),
            denoising_steps=baseline.denoising_calls(sampling), asm_active_steps=active * calls_per_schedule,
            seconds_per_video=round(per_video, 2), samples=samples,
            hours_per_config=round(per_video * samples / 3600, 2), peak_memory_gb=peak,
            peak_memory_pipeline_gb=pipeline_peak, computed_fraction=computed, compile=generator.compile_mode,
            guidance=str((cfg.get("guidance") or {}).get("name") or "none"),
        )
    finally:
        del generator
        gc.collect()
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
    return cost


def _device_name(device: str) -> str:
    return torch.cuda.get_device_name(device) if device.startswith("cuda") else "cpu"


