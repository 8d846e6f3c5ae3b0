"""The guidance methods: which passes each step runs, and how their predictions combine (diffusers guiders).

Passes are named by the prediction they make: `pred_cond` (the run's own inputs), `pred_uncond` (the negative
prompt), `pred_cond_skip` (the conditional inputs through the perturbed model) and, for alg, `pred_cond_low` /
`pred_uncond_low` (the image latents low-passed). Equations (c, u, p: conditional, unconditional, perturbed
predictions; w: CFG scale; s: perturbation scale):

  cfg            u + w (c - u)                                    classifier-free guidance (arXiv 2207.12598)
  cfg-zero-star  a u + w (c - a u), a = <c, u> / |u|^2;           CFG-Zero* (arXiv 2503.18886), zero for the
                 0 in the first `zero_init_steps` steps           first steps
  apg            c + (w - 1) (d_perp + eta d_par), d = c - u      APG (arXiv 2410.02416), d split along c
  stg            c + (w - 1) (c - u) + s (c - p)                  STG-R (arXiv 2411.18664): p skips whole blocks
  pag            c + (w - 1) (c - u) + s (c - p)                  PAG (arXiv 2403.17377) = STG-A: p replaces the
                                                                  self-attention map by the identity
  alg            u + w (c_low - u_low) while low-passing,         ALG (arXiv 2506.08456)
                 u + w (c - u) after

The combinations are diffusers' guider classes (`diffusers.guiders`; apg, stg and pag in their "original
formulation" with scale w - 1, so that w = 1 means no CFG, as in the papers), stepped with `set_state` each step.
The passes are planned here, not with the guiders' `prepare_inputs`/`prepare_models`: with CFG off (the paper's
Wan baseline runs guidance 1.0) diffusers 0.42's SkipLayerGuidance and PerturbedAttentionGuidance hand the
perturbed pass the unconditional inputs and install no skip hooks (`tests/test_guidance.py` watches for a fix).
"""

from __future__ import annotations

import contextlib
import logging
import math

import torch
from diffusers.guiders import (
    AdaptiveProjectedGuidance,
    ClassifierFreeGuidance,
    ClassifierFreeZeroStarGuidance,
    PerturbedAttentionGuidance,
    SkipLayerGuidance,
)
from diffusers.hooks import HookRegistry, LayerSkipConfig, apply_layer_skip

from omiti2v.compat.diffusers import layer_skip_hook_name, register_wan_attention_for_layer_skip
from omiti2v.guidance.config import GUIDANCE_METHODS, GuidanceConfig

COND, UNCOND, SKIP, COND_LOW, UNCOND_LOW = "pred_cond", "pred_uncond", "pred_cond_skip", "pred_cond_low", "pred_uncond_low"


@contextlib.contextmanager
def skipped_layers(denoiser: torch.nn.Module, configs: list[LayerSkipConfig]):
    """The perturbed model of stg / pag: diffusers' layer-skip hooks on `denoiser`'s blocks for one pass."""
    for config in configs:
        apply_layer_skip(denoiser, config)
    try:
        yield
    finally:
        HookRegistry.check_if_exists_or_initialize(denoiser).remove_hook(layer_skip_hook_name(), recurse=True)


def low_pass(latents: torch.Tensor, resize_factor: float) -> torch.Tensor:
    """ALG's filter: every (H, W) plane of `latents` (batch, channels, frames, H, W) bilinearly down-sampled by
    `resize_factor` (antialiased, size rounded, at least 1) and up-sampled back, in float32."""
    *lead, height, width = latents.shape
    small = (max(1, round(height * resize_factor)), max(1, round(width * resize_factor)))
    planes = latents.float().reshape(-1, 1, height, width)
    planes = torch.nn.functional.interpolate(planes, size=small, mode="bilinear", align_corners=False, antialias=True)
    planes = torch.nn.functional.interpolate(planes, size=(height, width), mode="bilinear", align_corners=False,
                                             antialias=True)
    return planes.reshape(*lead, height, width).to(latents.dtype)


class GuidanceMethod:
    """One method on one run: its diffusers guider, the passes of each step and their combination."""

    name = ""
    source = ""  # arXiv id of the method's paper

    def __init__(self, config: GuidanceConfig):
        self.config = config
        self.guider = self.build_guider()

    def build_guider(self):
        raise NotImplementedError

    def perturbed(self, denoiser: torch.nn.Module):
        """Context of the `pred_cond_skip` pass (methods without one: nothing)."""
        return contextlib.nullcontext()

    def passes(self, step: int, num_steps: int, timestep: torch.Tensor | float = 0.0) -> tuple[str, ...]:
        """The predictions step `step` of `num_steps` needs; also moves the guider to that step."""
        self.guider.set_state(step=step, num_inference_steps=num_steps, timestep=timestep)
        self.guider.prepare_inputs({})  # the guider's per-step preparation (APG: a fresh momentum at step 0)
        return (COND, UNCOND) if self.guider.num_conditions > 1 else (COND,)

    def combine(self, predictions: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.guider.forward(**predictions).pred

    def forwards(self, num_steps: int) -> list[int]:
        """Transformer forwards of every step of a `num_steps`-step schedule."""
        return [len(self.passes(step, num_steps)) for step in range(num_steps)]


class CFG(GuidanceMethod):
    source = "2207.12598"

    def build_guider(self):
        return ClassifierFreeGuidance(guidance_scale=self.config.guidance_scale)


class CFGZeroStar(GuidanceMethod):
    source = "2503.18886"

    def build_guider(self):
        return ClassifierFreeZeroStarGuidance(guidance_scale=self.config.guidance_scale,
                                              zero_init_steps=self.config.zero_init_steps)


class APG(GuidanceMethod):
    source = "2410.02416"

    def build_guider(self):
        c = self.config
        return AdaptiveProjectedGuidance(guidance_scale=c.guidance_scale - 1.0, eta=c.eta,
                                         adaptive_projected_guidance_rescale=c.norm_threshold,
                                         adaptive_projected_guidance_momentum=c.momentum,
                                         use_original_formulation=True)


class _Perturbed(GuidanceMethod):
    """stg / pag: CFG at w (w = 1: none) plus the perturbed pass from step 1 on (diffusers' range rule)."""

    guider_class: type = SkipLayerGuidance

    def layer_skip_config(self) -> LayerSkipConfig:
        raise NotImplementedError

    def build_guider(self):
        c = self.config
        prefix = "skip_layer_guidance" if self.guider_class is SkipLayerGuidance else "perturbed_guidance"
        config_key = "skip_layer_config" if self.guider_class is SkipLayerGuidance else "perturbed_guidance_config"
        return self.guider_class(guidance_scale=c.guidance_scale - 1.0, use_original_formulation=True,
                                 **{f"{prefix}_scale": float(c.strength), f"{prefix}_start": 0.0,
                                    f"{prefix}_stop": 1.0, config_key: [self.layer_skip_config()]})

    def perturbed(self, denoiser):
        return skipped_layers(denoiser, self.guider.skip_layer_config)

    @property
    def cfg_on(self) -> bool:
        return not math.isclose(self.config.guidance_scale, 1.0)

    def passes(self, step, num_steps, timestep=0.0):
        self.guider.set_state(step=step, num_inference_steps=num_steps, timestep=timestep)
        extra = self.guider.num_conditions - 1  # the CFG term (every step when on), then the perturbed one
        uncond = self.cfg_on and extra > 0
        return (COND, *((UNCOND,) if uncond else ()), *((SKIP,) if extra - uncond > 0 else ()))


class STG(_Perturbed):
    source = "2411.18664"

    def layer_skip_config(self):
        return LayerSkipConfig(indices=list(self.config.blocks), fqn="auto", skip_attention=True, skip_ff=True)


class PAG(_Perturbed):
    source = "2403.17377"
    guider_class = PerturbedAttentionGuidance

    def layer_skip_config(self):
        register_wan_attention_for_layer_skip()
        return LayerSkipConfig(indices=list(self.config.blocks), fqn="auto", skip_attention=False,
                               skip_attention_scores=True, skip_ff=False)


class ALG(GuidanceMethod):
    """CFG at w, whose unconditional term keeps the original image while the other two see it low-passed."""

    source = "2506.08456"

    def build_guider(self):
        return ClassifierFreeGuidance(guidance_scale=self.config.guidance_scale)

    def passes(self, step, num_steps, timestep=0.0):
        if self.config.low_pass_active(step, num_steps):
            return (COND_LOW, UNCOND_LOW, UNCOND)
        return super().passes(step, num_steps, timestep)

    def combine(self, predictions):
        if COND_LOW not in predictions:
            return super().combine(predictions)
        u, c_low, u_low = predictions[UNCOND], predictions[COND_LOW], predictions[UNCOND_LOW]
        return u + self.config.guidance_scale * (c_low - u_low)


def build_method(config: GuidanceConfig) -> GuidanceMethod:
    """The method of `config` (resolved); diffusers' notice that guiders are experimental is logged at debug
    level (docs/methods.md says so once)."""
    notices = logging.getLogger("diffusers.guiders.guider_utils")
    level = notices.level
    notices.setLevel(logging.ERROR)
    try:
        return GUIDANCE_METHODS.lookup(config.method)(config)
    finally:
        notices.setLevel(level)


def forwards_per_step(config: GuidanceConfig, num_steps: int) -> float:
    """Mean transformer forwards per step of `config` (resolved) over a `num_steps`-step schedule."""
    counts = build_method(config).forwards(num_steps)
    return sum(counts) / len(counts)
