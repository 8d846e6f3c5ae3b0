"""`GuidanceConfig`: which sampling-guidance method a run uses and at which strength (conf/guidance/*.yaml).

One knob per method, `strength` (see `omiti2v.guidance.methods` for what it sets): the CFG scale w for cfg,
cfg-zero-star and apg, the perturbation scale s for stg and pag, the share of the steps that see the low-passed
image for alg. `cfg_scale` is the classifier-free guidance that stg, pag and alg run beside their own term (None:
the model's own `sampling.guidance_scale`, resolved by `resolved`). Plain Python: config checks and reports read it
without loading torch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from omiti2v.registry import Registry

# method -> (what `strength` sets, smallest allowed, largest allowed)
KNOBS: dict[str, tuple[str, float, float]] = {
    "cfg": ("CFG scale w", 1.0, math.inf),
    "cfg-zero-star": ("CFG scale w", 1.0, math.inf),
    "apg": ("APG scale w", 1.0, math.inf),
    "stg": ("STG scale s", 0.0, math.inf),
    "pag": ("perturbed-attention scale s", 0.0, math.inf),
    "alg": ("low-pass step fraction", 0.0, 1.0),
}
METHODS = ("none", *KNOBS)
# method -> its `GuidanceMethod` (omiti2v.guidance.methods: torch and diffusers), imported on its first lookup
GUIDANCE_METHODS = Registry("guidance.method", base="omiti2v.guidance.methods:GuidanceMethod",
                            name_attr="name").declare_all({
    "cfg": "omiti2v.guidance.methods:CFG",
    "cfg-zero-star": "omiti2v.guidance.methods:CFGZeroStar",
    "apg": "omiti2v.guidance.methods:APG",
    "stg": "omiti2v.guidance.methods:STG",
    "pag": "omiti2v.guidance.methods:PAG",
    "alg": "omiti2v.guidance.methods:ALG",
})
# Methods whose extra pass perturbs chosen transformer blocks (diffusers layer-skip hooks on the block stack).
PERTURBING = ("stg", "pag")


@dataclass(frozen=True)
class GuidanceConfig:
    """Settings of one guidance method (see the module docstring; the method-specific fields are ignored by the
    others).

    blocks: stg / pag, the transformer blocks the perturbed pass skips (stg: the whole block) or whose
        self-attention map it replaces by the identity (pag).
    zero_init_steps: cfg-zero-star, leading steps whose prediction is zeroed.
    eta, norm_threshold, momentum: apg, the weight of the update's part parallel to the conditional prediction,
        the bound on the update's norm (0: none) and the momentum of its running average (None: none).
    resize_factor: alg, the low-pass filter: bilinear down- then up-sampling of the image latents by this factor.
    negative_prompt: the unconditional pass's prompt (None: the model's `sampling.negative_prompt`, else "").
    """

    method: str = "none"
    strength: float | None = None
    cfg_scale: float | None = None
    blocks: tuple[int, ...] = (9,)
    zero_init_steps: int = 1
    eta: float = 0.0
    norm_threshold: float = 0.0
    momentum: float | None = None
    resize_factor: float = 0.4
    negative_prompt: str | None = None
    name: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        problem = strength_problem(self.method, self.strength)
        if problem:
            raise ValueError(problem)
        object.__setattr__(self, "blocks", tuple(int(b) for b in self.blocks))
        if self.method in PERTURBING and (not self.blocks or min(self.blocks) < 0):
            raise ValueError(f"guidance.blocks {list(self.blocks)}: {self.method} needs at least one block index >= 0")
        if self.cfg_scale is not None and not (math.isfinite(self.cfg_scale) and self.cfg_scale >= 1.0):
            raise ValueError(f"guidance.cfg_scale {self.cfg_scale!r} must be a number >= 1 (1: no CFG) or null")
        if not 0.0 < self.resize_factor <= 1.0:
            raise ValueError(f"guidance.resize_factor {self.resize_factor!r} must be in (0, 1]")
        if self.zero_init_steps < 0 or self.norm_threshold < 0:
            raise ValueError("guidance.zero_init_steps and guidance.norm_threshold must be >= 0")

    @classmethod
    def from_hydra(cls, guidance_cfg: Mapping[str, Any] | None) -> GuidanceConfig:
        """The `guidance` group of a run (absent: method none). Keys: method, strength, and the optional fields."""
        guidance_cfg = dict(guidance_cfg or {})
        keys = {f for f in cls.__dataclass_fields__ if f != "name"}
        values = {k: guidance_cfg[k] for k in keys if guidance_cfg.get(k) is not None}
        if "blocks" in values:
            values["blocks"] = tuple(values["blocks"])
        return cls(**values, name=guidance_cfg.get("name"))

    def resolved(self, model_guidance_scale: float, model_negative_prompt: str | None = None) -> GuidanceConfig:
        """This config with `cfg_scale` and `negative_prompt` taken from the model where they are None."""
        cfg_scale = self.cfg_scale if self.cfg_scale is not None else max(1.0, float(model_guidance_scale))
        negative = self.negative_prompt if self.negative_prompt is not None else (model_negative_prompt or "")
        return replace(self, cfg_scale=cfg_scale, negative_prompt=negative)

    @property
    def active(self) -> bool:
        return self.method != "none"

    @property
    def knob(self) -> str | None:
        return KNOBS[self.method][0] if self.active else None

    @property
    def guidance_scale(self) -> float:
        """The classifier-free guidance scale w of the combination (1: no unconditional term)."""
        if self.method in ("cfg", "cfg-zero-star", "apg"):
            return float(self.strength)
        return 1.0 if self.cfg_scale is None else float(self.cfg_scale)

    @property
    def needs_unconditional(self) -> bool:
        """Whether some step runs the unconditional (negative-prompt) pass: true CFG, two forwards or more."""
        return self.method == "alg" or (self.active and self.guidance_scale != 1.0)

    def low_pass_active(self, step: int, num_steps: int) -> bool:
        """alg: step `step` of `num_steps` sees the low-passed image, i.e. step / (num_steps - 1) <= strength (the
        official ALG 'interval' schedule from step 0); the original image from the first step past it on."""
        return self.method == "alg" and step / max(num_steps - 1, 1) <= float(self.strength)

    def record(self) -> dict[str, Any]:
        """The settings a run's records keep (sidecars, summary.json `method.guidance`)."""
        out = {"method": self.method, "strength": self.strength, "cfg_scale": self.cfg_scale,
               "negative_prompt": self.negative_prompt}
        if self.method in PERTURBING:
            out["blocks"] = list(self.blocks)
        if self.method == "cfg-zero-star":
            out["zero_init_steps"] = self.zero_init_steps
        if self.method == "apg":
            out.update(eta=self.eta, norm_threshold=self.norm_threshold, momentum=self.momentum)
        if self.method == "alg":
            out["resize_factor"] = self.resize_factor
        return out


def strength_problem(method: str, strength: Any) -> str | None:
    """Why `strength` is not a valid knob value for `method` (None when it is)."""
    if method not in METHODS:
        return f"guidance.method {method!r} is not one of {'|'.join(METHODS)}"
    if method == "none":
        return None if strength is None else "guidance.strength must be null with method none"
    knob, low, high = KNOBS[method]
    ok = isinstance(strength, int | float) and not isinstance(strength, bool) and math.isfinite(strength)
    if not ok or not low <= strength <= high:
        bounds = f">= {low:g}" if math.isinf(high) else f"in [{low:g}, {high:g}]"
        return f"guidance.strength {strength!r}: the {knob} of {method} must be a number {bounds}"
    return None
