"""Model settings from conf/model/<name>.yaml, the single source of every model number (checkpoints, fps,
sizing, sampling, scheduler, memory, seed, video, ASM preset). Hydra composes `cfg.model` from the same files;
code that runs without Hydra (benchmarks, tests, a baseline built by name) loads them here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from omegaconf import OmegaConf

from ..conf_files import group_options, load_group_config
from ..config_rules import number, one_of
from ..dtypes import DTYPE_NAMES
from .registry import MODELS
from .sizing import SIZING_MODES

WEIGHTS = ("pretrained", "random", "tiny")
SEED_MODES = ("fixed", "per_sample")  # fixed: every sample uses the base seed (official FramePack, Wan2.1 scripts)
# Where the initial noise is drawn: cpu = a CPU generator (the same numbers on every machine); device = a
# generator on the run's device (official Wan2.1 on CUDA, whose numbers depend on the GPU model).
NOISE_DEVICES = ("cpu", "device")
# The input image as the official code feeds it (official_inputs.py), or as the diffusers pipeline does.
IMAGE_INPUTS = ("official", "diffusers")
# `model.precision` keys that are not pipeline components (precision.py).
PRECISION_SPECIAL_KEYS = ("output_projection",)


def precision_dtypes(key, value):
    """`model.precision`: component -> a dtype name, or null for `model.dtype`."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        return f"{key} {value!r} is not a mapping of component -> dtype (e.g. {key}.vae=float32)"
    wrong = {k: v for k, v in value.items() if v is not None and v not in DTYPE_NAMES}
    return "; ".join(f"{key}.{k} {v!r} is not one of {'|'.join(DTYPE_NAMES)} or null" for k, v in wrong.items()) or None


# What `cfg.model` values must be: checked with the whole config before anything loads, and by
# `Baseline.settings` on the settings it builds (code without Hydra).
CONFIG_RULES = {
    "model.baseline": one_of(*MODELS),
    "model.weights": one_of(*WEIGHTS),
    "model.dtype": one_of(*DTYPE_NAMES),
    "model.seed_mode": one_of(*SEED_MODES),
    "model.fps": number(gt=0),
    "model.sizing.mode": one_of(*SIZING_MODES),
    "model.sampling.num_inference_steps": number(ge=1, integer=True),
    "model.sampling.num_frames": number(ge=1, integer=True),
    "model.video.uint8": one_of("round", "truncate"),
    "model.noise": one_of(*NOISE_DEVICES),
    "model.image_input": one_of(*IMAGE_INPUTS),
    "model.precision": precision_dtypes,
}


def check_precision(precision: Mapping | None, components: Sequence[str]) -> None:
    """Reject a `model.precision` key that is not one of `components` (this pipeline's) or a special key."""
    allowed = sorted({*components, *PRECISION_SPECIAL_KEYS})
    for key in precision or {}:
        if key not in allowed:
            raise ValueError(f"model.precision.{key}: not a component of this pipeline; expected one of {allowed}")


def model_settings(name: str, overrides: Mapping | Sequence[str] | None = None) -> dict:
    """conf/model/<name>.yaml with its defaults list resolved, then `overrides` (a dict or `key=value` strings
    relative to `model.`, as on the command line) merged key by key."""
    cfg = load_group_config("model", name)
    if overrides:
        extra = OmegaConf.from_dotlist(list(overrides)) if _is_dotlist(overrides) else OmegaConf.create(dict(overrides))
        cfg = OmegaConf.merge(cfg, extra)
    return OmegaConf.to_container(cfg, resolve=True)


def model_names() -> list[str]:
    """Every selectable `model=<name>`."""
    return group_options("model")


def _is_dotlist(overrides) -> bool:
    return not isinstance(overrides, Mapping) and all(isinstance(o, str) for o in overrides)

