"""`Baseline`: what every model of the registry does, as behaviour only; its numbers (checkpoints, the paper's
sampling settings, fps, sizing, scheduler, memory, seed, noise, video, ASM preset) live in conf/model/<name>.yaml.

An entry knows its diffusers pipeline class, how the input image is sized, and how to turn (image, prompt,
settings) into the pipeline's call. It builds the pipeline three ways (`weights`):
  pretrained  from_pretrained of the hub ids or local folders in the config;
  random      the real-size architecture with random weights and a local tokenizer (GPU dry runs, planning);
  tiny        the same pipeline class at toy size, built offline (tests, the smoke run).
"""

from __future__ import annotations

import copy
import inspect
import os
from collections.abc import Mapping
from pathlib import Path

import torch
from PIL import Image

from ..config_rules import group_problems
from ..dtypes import DTYPE_NAMES, torch_dtype
from ..errors import SetupError
from ..registry import LazyModule
from ..runs import to_plain
from .settings import CONFIG_RULES, model_settings
from .sizing import fit_image, target_size

C = LazyModule("omiti2v.models.components")  # diffusers and transformers: only when a pipeline is built

DTYPES = {name: torch_dtype(name) for name in DTYPE_NAMES}
# Top-level `cfg.model` keys every baseline reads (docs/models.md); entries add `extra_keys`.
SETTINGS_KEYS = ("name", "baseline", "checkpoint", "weights", "asm_preset", "dtype", "fps", "sizing", "sampling",
                 "scheduler", "memory", "seed", "seed_mode", "noise", "video")


class WeightsNotFoundError(SetupError, RuntimeError):
    """Pretrained weights are neither in a local folder nor in the Hugging Face cache (and the hub is offline)."""


def _merge(base: dict, override: Mapping) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        out[key] = _merge(out[key], value) if isinstance(out.get(key), dict) and isinstance(value, Mapping) else value
    return out


class Baseline:
    """One baseline. Subclasses set the behaviour attributes and the family-specific hooks below."""

    name: str = ""  # set by the registry (registry.py)
    family: str = ""  # architecture family of the random/tiny builds
    pipeline: str = ""  # diffusers pipeline class
    extra_checkpoints: tuple[str, ...] = ()  # config keys of separately published components (hub id or folder)
    extra_keys: tuple[str, ...] = ()  # further top-level config keys this entry reads

    # -- settings --------------------------------------------------------------------------------------------

    def settings(self, model_cfg: Mapping | None = None) -> dict:
        """conf/model/<name>.yaml overridden key by key by `cfg.model` (a Hydra DictConfig or a plain dict)."""
        settings = _merge(model_settings(self.name), to_plain(model_cfg or {}))
        unread = sorted(set(settings) - {*SETTINGS_KEYS, *self.extra_checkpoints, *self.extra_keys})
        if unread:
            raise ValueError(f"model: {unread} are not read by baseline {self.name!r}; remove them or add the code")
        problems = group_problems(CONFIG_RULES, "model", settings)
        if problems:
            raise ValueError("; ".join(problems))
        self.check_sampling(settings["sampling"])
        return settings

    def check_sampling(self, sampling: Mapping) -> None:
        """Reject frame counts the pipeline would silently change."""
        n = int(sampling["num_frames"])
        if (n - 1) % 4:
            raise ValueError(f"model.sampling.num_frames={n}: must be 4k+1 (the VAE compresses time by 4)")

    def output_frames(self, sampling: Mapping, transformer_config: Mapping | None = None) -> int:
        """Frames in the video the pipeline returns for these settings."""
        return int(sampling["num_frames"])

    def denoising_calls(self, sampling: Mapping) -> int:
        """Transformer denoising steps per video (FramePack runs the schedule once per section)."""
        return int(sampling["num_inference_steps"])

    def forwards_per_step(self, sampling: Mapping) -> int:
        """Transformer forwards per step: 2 with classifier-free guidance (cond + uncond), else 1."""
        return 2 if float(sampling.get("guidance_scale", 1.0)) > 1.0 else 1

    def computed_fraction(self, settings: Mapping, assumed: float) -> float:
        """Share of transformer calls that run the block stack (below 1 only with a step cache)."""
        return 1.0

    # -- building --------------------------------------------------------------------------------------------

    def pipeline_class(self):
        import diffusers

        return getattr(diffusers, self.pipeline)

    def build(self, settings: Mapping, device: str | torch.device = "cpu"):
        """The diffusers pipeline for `settings` (see `settings()`), weights as `settings['weights']` says."""
        dtype = DTYPES[settings["dtype"]]
        if settings["weights"] == "pretrained":
            pipe = self.load_pretrained(settings, dtype)
        else:
            size = "real" if settings["weights"] == "random" else "tiny"
            with C.building(device, dtype):
                parts = self.components(size, self.build_transformer(size, dtype, device))
            # Built outside the context: scheduler tables stay float32 on the CPU.
            pipe = self.pipeline_class()(**parts, scheduler=self.make_scheduler(settings["scheduler"]))
        sched = (settings.get("sampling") or {}).get("scheduler")
        if sched:
            pipe.scheduler = self.make_scheduler(sched, pipe.scheduler.config)
        return pipe

    def build_transformer(self, size: str, dtype: torch.dtype, device: str | torch.device):
        from .architectures import build_transformer

        return build_transformer(self.family, size, dtype, device)

    def architecture_config(self, size: str) -> dict:
        """Constructor kwargs of this baseline's transformer at `size` ("real" | "tiny"); newer baselines override."""
        from .architectures import transformer_config

        return transformer_config(self.family, size)

    def make_scheduler(self, spec: Mapping, base_config: Mapping | None = None):
        """A scheduler from `{class: Name, **kwargs}`: the harness's own (omiti2v.schedulers, which carry the
        official constants and ignore the checkpoint's scheduler config) or a diffusers one (from `base_config`)."""
        import diffusers

        from omiti2v import schedulers

        spec = dict(spec)
        name = spec.pop("class")
        if hasattr(schedulers, name):
            return getattr(schedulers, name)(**spec)
        cls = getattr(diffusers, name)
        return cls.from_config(dict(base_config or {}), **spec) if base_config else cls(**spec)

    def components(self, size: str, transformer) -> dict:
        """Pipeline components except the scheduler, sized to match `transformer` (random weights)."""
        raise NotImplementedError

    def pretrained_ids(self, settings: Mapping) -> dict[str, str]:
        """Config key -> hub id or local folder of every checkpoint this baseline loads."""
        return {"checkpoint": settings["checkpoint"], **{k: settings[k] for k in self.extra_checkpoints}}

    def load_pretrained(self, settings: Mapping, dtype: torch.dtype):
        ids = self.pretrained_ids(settings)
        require_weights(ids, self.name)
        try:
            return self.from_pretrained(settings, dtype)
        except (OSError, ValueError) as exc:
            raise WeightsNotFoundError(_missing_message(self.name, ids) + f"\n(loader said: {exc})") from exc

    def from_pretrained(self, settings: Mapping, dtype: torch.dtype):
        return self.pipeline_class().from_pretrained(settings["checkpoint"], torch_dtype=dtype)

    # -- calling ---------------------------------------------------------------------------------------------

    def prepare_image(self, image: Image.Image, settings: Mapping) -> tuple[Image.Image, int, int]:
        height, width = target_size(settings["sizing"], image.width, image.height)
        return fit_image(image, height, width), height, width

    def noise_generator(self, seed: int, device: str, settings: Mapping) -> torch.Generator:
        """The seeded generator the pipeline draws its noise from (`model.noise`, see settings.NOISE_DEVICES)."""
        return torch.Generator(device if settings.get("noise", "cpu") == "device" else "cpu").manual_seed(seed)

    def call_kwargs(self, pipe, image: Image.Image, prompt: str, height: int, width: int, settings: Mapping) -> dict:
        """Keyword arguments of the pipeline call: the sampling settings it accepts, plus image/prompt/size."""
        sampling = {k: v for k, v in settings["sampling"].items() if k != "scheduler"}
        accepted = inspect.signature(pipe.__call__).parameters
        unknown = sorted(k for k in sampling if k not in accepted)
        if unknown:
            raise ValueError(f"model.sampling: {unknown} are not parameters of {self.pipeline}.__call__")
        kwargs = {**sampling, "image": image, "prompt": prompt, "height": height, "width": width, "output_type": "np"}
        if settings["weights"] != "pretrained":
            kwargs.update(self.local_tokenizer_kwargs(pipe, settings))
        return kwargs

    def local_tokenizer_kwargs(self, pipe, settings: Mapping) -> dict:
        """Extra call arguments that random/tiny builds need because their tokenizer is not the real one."""
        return {}


def require_weights(ids: Mapping[str, str], model: str) -> None:
    """Fail before any loading when the hub is offline and a checkpoint is neither a folder nor cached."""
    if not _hub_offline():
        return
    from huggingface_hub import snapshot_download

    missing = {}
    for key, repo in ids.items():
        if Path(repo).expanduser().is_dir():
            continue
        try:
            snapshot_download(repo, local_files_only=True)
        except Exception:  # any lookup failure means: not usable offline
            missing[key] = repo
    if missing:
        raise WeightsNotFoundError(_missing_message(model, missing))


def _hub_offline() -> bool:
    return any(os.environ.get(v, "").lower() in ("1", "true", "yes") for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def _missing_message(model: str, ids: Mapping[str, str]) -> str:
    lines = [f"weights for model {model!r} are not available offline. Download them, e.g.:"]
    lines += [f"  hf download {repo} --local-dir DIR    # then model.{key}=DIR" for key, repo in ids.items()]
    tiny = model.removesuffix("-tiny") + "-tiny"
    lines.append(f"or set model.<key>=/local/folder (Hydra override); for a dry run without weights use "
                 f"model={tiny} (`make eval MODEL={tiny}`).")
    return "\n".join(lines)
