"""FramePack's own flow-matching UniPC solver (`sample_unipc`, variant bh1) as a diffusers scheduler.

diffusers' UniPCMultistepScheduler does not reproduce it (its lambda is -inf at sigma = 1 and, on a Gaussian
flow in float64, its best configuration ends 1.7e-2 away), so the official update equations are written out here:
  * sigmas: linspace(1, 0, steps + 1) through the flux time shift exp(mu) / (exp(mu) + 1/t - 1), float32;
  * the model is read as an x0 predictor, x0 = x' - sigma * v with x' the sample rounded to the model's dtype
    (the official wrapper casts x to it before both the transformer call and this subtraction);
  * lambda = -log(sigma); order min(max_order, steps - 1), order i at step i during warm-up;
  * every step from sigma_{i-1} to sigma_i is a UniP predictor, one model call at the predicted point, then a
    UniC corrector that reuses that call; B(h) = -h (bh1);
  * it stops at the last non-zero sigma and returns that call's x0 prediction (one model call per step).

The pipeline protocol is diffusers': the model is called on `sample` at `timesteps[i]`, then
`step(model_output, t, sample)` returns the next point to evaluate (the predictor's output), or, after the
last call, the final x0. `timestep_dtype` is the transformer's dtype (bf16 at real size): timesteps are
sigma * 1000 cast to it, as the official wrapper casts them, so the transformer and ASM's step window see the
official values, and x' above is the sample cast to it. mu comes from the pipeline: diffusers' FramePack
pipeline computes it from this scheduler's config (base/max image_seq_len, base/max shift) and caps it at ln 7,
as the official code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from diffusers.configuration_utils import register_to_config
from diffusers.schedulers.scheduling_utils import SchedulerOutput

from ..dtypes import DTYPE_NAMES
from .base import OneCallPerStepScheduler, check_choice, unipc_system

# float64: no rounding at all (exact comparisons with a float64 restatement of the equations)
TIMESTEP_DTYPES = {name: getattr(torch, name) for name in (*DTYPE_NAMES, "float64")}


def flux_shifted_sigmas(unshifted: torch.Tensor, mu: float) -> torch.Tensor:
    """The flux time shift exp(mu) / (exp(mu) + (1/t - 1)), in the input's dtype (t = 0 stays 0)."""
    return math.exp(mu) / (math.exp(mu) + (1.0 / unshifted - 1.0))


@dataclass
class _Coefficients:
    """The bh1 UniP/UniC coefficients of one step from sigma_prev to sigma (float64)."""

    ratio: float               # sigma / sigma_prev
    h_phi_1: float             # expm1(-h)
    b_h: float                 # B(h) = -h
    rks: list[float]           # (lambda_prev_k - lambda_prev) / h of the older points
    rhos_p: list[float]        # predictor weights of the D1 terms
    rhos_c: list[float]        # corrector weights: D1 terms, then the new model call


def unipc_coefficients(sigma_history: list[float], sigma: float, order: int) -> _Coefficients:
    """Coefficients for a step of `order` from sigma_history[-1] to `sigma`, using sigma_history[-order:]."""
    lam = [-math.log(s) for s in sigma_history[-order:]]
    lam_prev, lam_t = lam[-1], -math.log(sigma)
    h = lam_t - lam_prev
    rks = [(lam[-(k + 1)] - lam_prev) / h for k in range(1, order)]
    hh = -h
    h_phi_1 = math.expm1(hh)
    rows, b = unipc_system(np.array(rks + [1.0]), h_phi_1, hh, hh, order)   # bh1: B(h) = hh
    R, b = np.stack(rows), np.array(b)
    if order == 1:
        rhos_p, rhos_c = [], [0.5]
    else:
        rhos_p = [0.5] if order == 2 else np.linalg.solve(R[:-1, :-1], b[:-1]).tolist()
        rhos_c = np.linalg.solve(R, b).tolist()
    return _Coefficients(sigma / sigma_history[-1], h_phi_1, hh, rks, rhos_p, rhos_c)


class FramePackUniPCScheduler(OneCallPerStepScheduler):
    """FramePack's flow-matching UniPC (bh1); see the module docstring for the exact procedure."""

    @register_to_config
    def __init__(self, num_train_timesteps: int = 1000, max_order: int = 3, base_image_seq_len: int = 256,
                 max_image_seq_len: int = 4096, base_shift: float = 0.5, max_shift: float = 1.15,
                 timestep_dtype: str = "bfloat16"):
        check_choice("timestep_dtype", timestep_dtype, TIMESTEP_DTYPES)
        self._start()

    def _reset_solver(self) -> None:
        self._step_index = 0
        self._x0_history: list[torch.Tensor] = []
        self._sigma_history: list[float] = []
        self._pending: tuple[torch.Tensor, float, torch.Tensor] | None = None  # corrector: base, weight, x0_prev

    def set_timesteps(self, num_inference_steps: int | None = None, device: str | torch.device | None = None,
                      sigmas: list[float] | np.ndarray | None = None, mu: float | None = None) -> None:
        """Shifted sigmas (plus a terminal 0) and their timesteps. `sigmas` are the unshifted non-zero ones
        (diffusers' FramePack pipeline passes linspace(1, 0, steps + 1)[:-1]); mu defaults to the cap ln 7,
        the value of every section of at least ~2,300 latent tokens (the 640 bucket has 14,040)."""
        if sigmas is None:
            if not num_inference_steps:
                raise ValueError("set_timesteps needs num_inference_steps or sigmas")
            unshifted = torch.linspace(1.0, 0.0, num_inference_steps + 1)[:-1]
        else:
            unshifted = torch.as_tensor(np.asarray(sigmas), dtype=torch.float32)
        mu = math.log(7.0) if mu is None else float(mu)
        shifted = flux_shifted_sigmas(unshifted, mu)
        self.sigmas = torch.cat([shifted, torch.zeros(1)]).to(device=device)
        dtype = TIMESTEP_DTYPES[self.config.timestep_dtype]
        self.timesteps = (shifted * self.config.num_train_timesteps).to(dtype).float().to(device=device)
        self.num_inference_steps = len(shifted)
        self._reset_solver()

    @property
    def solver_order(self) -> int:
        """min(max_order, steps - 1), at least 1: the order after warm-up."""
        return max(1, min(self.config.max_order, self.num_inference_steps - 1))

    def step(self, model_output: torch.Tensor, timestep, sample: torch.Tensor,
             return_dict: bool = True) -> SchedulerOutput | tuple[torch.Tensor]:
        """`model_output` is the velocity at `sample`; returns the next point to call the model at, or the
        final x0 prediction after the last step."""
        self._require_timesteps()
        i = self._step_index
        sigma = float(self.sigmas[i])
        as_model_saw = sample.to(TIMESTEP_DTYPES[self.config.timestep_dtype]).to(sample.dtype)
        x0 = as_model_saw - sigma * model_output.to(sample.dtype)
        if self._pending is None:
            x = sample
        else:
            base, weight, x0_prev = self._pending
            x = base - weight * (x0 - x0_prev)  # UniC corrector with this call's x0
        self._x0_history = (self._x0_history + [x0])[-self.solver_order:]
        self._sigma_history = (self._sigma_history + [sigma])[-self.solver_order:]
        self._step_index += 1
        if self._step_index == self.num_inference_steps:
            out = x0
        else:
            out = self._predict(x, float(self.sigmas[self._step_index]))
        return SchedulerOutput(prev_sample=out) if return_dict else (out,)

    def _predict(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        """UniP predictor to `sigma`; stores what the corrector needs once the model has been called there."""
        order = min(self._step_index, self.solver_order)
        c = unipc_coefficients(self._sigma_history, sigma, order)
        x0_prev = self._x0_history[-1]
        d1s = [(self._x0_history[-(k + 1)] - x0_prev) / rk for k, rk in enumerate(c.rks, start=1)]
        base = c.ratio * x - c.h_phi_1 * x0_prev
        predicted = base - c.b_h * sum((r * d for r, d in zip(c.rhos_p, d1s, strict=True)), torch.zeros_like(x))
        corrector_base = base - c.b_h * sum((r * d for r, d in zip(c.rhos_c[:-1], d1s, strict=True)), torch.zeros_like(x))
        self._pending = (corrector_base, c.b_h * c.rhos_c[-1], x0_prev)
        return predicted
