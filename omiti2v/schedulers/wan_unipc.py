"""The official Wan2.1 flow-matching UniPC solver (the Wan repository's `FlowUniPCMultistepScheduler`, as its
image-to-video generate code configures it) as a diffusers scheduler.

diffusers' UniPCMultistepScheduler (flow_prediction, use_flow_sigmas) comes close but is another rule: its
timesteps differ by up to 3 and its trajectories by ~1e-3 on a toy flow. The official rule, written out here:
  * grid: the training sigmas 1 - linspace(1, 1/N, N) reversed (N = 1000) in float32, so sigma_max = 0.999
    (its float32 value) and sigma_min = 0; `steps` sigmas linspace(sigma_max, sigma_min, steps + 1)[:-1] in
    float64, shifted by shift * s / (1 + (shift - 1) * s) (`flow_shift`; Wan's 480p setting: 3), then 0 appended;
    timesteps = shifted * N truncated to int64 (999, 991, 982, ... at 40 steps), sigmas stored as float32;
  * the model output v is read as a velocity: x0 = x - sigma * v;
  * lambda = log(1 - sigma) - log(sigma); UniPC with B(h) = expm1(-h) ("bh2"), order 2 after one warm-up step,
    lower orders at the end (the order is at most the number of steps left);
  * every step first corrects the point the model was just called at (UniC, with that call's x0 and the
    order of the predictor that produced it; none at the first step), then predicts the next point (UniP);
    the last step predicts to sigma 0, where the result is the last call's x0 (one model call per step).
The coefficients are computed in float32 0-dim tensors by default, as the official code does on its float32
sigmas (`coefficient_dtype`: float64 for exact comparisons with a float64 restatement).
"""

from __future__ import annotations

import numpy as np
import torch
from diffusers.configuration_utils import register_to_config
from diffusers.schedulers.scheduling_utils import SchedulerOutput

from .base import OneCallPerStepScheduler, check_choice, unipc_system

COEFFICIENT_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def wan_sigmas(steps: int, shift: float, num_train_timesteps: int = 1000) -> tuple[np.ndarray, torch.Tensor]:
    """(shifted sigmas in float64 without the final 0, int64 timesteps) of the official grid."""
    train = 1.0 - np.linspace(1.0, 1.0 / num_train_timesteps, num_train_timesteps)[::-1]
    train32 = torch.from_numpy(train.copy()).to(torch.float32)
    sigma_max, sigma_min = train32[0].item(), train32[-1].item()
    grid = np.linspace(sigma_max, sigma_min, steps + 1)[:-1]
    shifted = shift * grid / (1.0 + (shift - 1.0) * grid)
    return shifted, torch.from_numpy(shifted * num_train_timesteps).to(torch.int64)


class WanFlowUniPCScheduler(OneCallPerStepScheduler):
    """Wan2.1's flow-matching UniPC (bh2, order 2, predictor + corrector); see the module docstring."""

    @register_to_config
    def __init__(self, num_train_timesteps: int = 1000, flow_shift: float = 3.0, solver_order: int = 2,
                 coefficient_dtype: str = "float32"):
        check_choice("coefficient_dtype", coefficient_dtype, COEFFICIENT_DTYPES)
        self._start()

    def _reset_solver(self) -> None:
        self._step_index = 0
        self._x0_history: list[torch.Tensor] = []   # newest last, at most solver_order
        self._warm_steps = 0                         # steps taken, capped at solver_order (warm-up)
        self._last_sample: torch.Tensor | None = None
        self._last_order = 0

    def set_timesteps(self, num_inference_steps: int, device: str | torch.device | None = None) -> None:
        shifted, timesteps = wan_sigmas(num_inference_steps, float(self.config.flow_shift),
                                        int(self.config.num_train_timesteps))
        self.sigmas = torch.from_numpy(np.append(shifted, 0.0).astype(np.float32))
        self.timesteps = timesteps.to(device=device)
        self.num_inference_steps = num_inference_steps
        self._reset_solver()

    def _lambda(self, index: int) -> torch.Tensor:
        sigma = self.sigmas[index].to(COEFFICIENT_DTYPES[self.config.coefficient_dtype])
        return torch.log(1.0 - sigma) - torch.log(sigma)

    def _update(self, x: torch.Tensor, start: int, order: int, new_x0: torch.Tensor | None) -> torch.Tensor:
        """One UniPC update of `x` from sigmas[start] to sigmas[start + 1] using the newest `order` x0 predictions
        (the newest belongs to sigmas[start]); with `new_x0` (the x0 at sigmas[start + 1]) it is the corrector."""
        dtype = COEFFICIENT_DTYPES[self.config.coefficient_dtype]
        sigma_s, sigma_t = self.sigmas[start].to(dtype), self.sigmas[start + 1].to(dtype)
        lambda_s = self._lambda(start)
        h = self._lambda(start + 1) - lambda_s
        m0 = self._x0_history[-1]
        ratios = [(self._lambda(start - k) - lambda_s) / h for k in range(1, order)]
        diffs = [(self._x0_history[-(k + 1)] - m0) / r for k, r in enumerate(ratios, start=1)]
        hh = -h
        phi = torch.expm1(hh)   # h * phi_1(-h)
        b_h = phi               # bh2: B(h) = expm1(-h), the same number
        rows, rhs = unipc_system(torch.stack([*ratios, torch.ones((), dtype=dtype)]), phi, hh, b_h, order)
        matrix, rhs = torch.stack(rows), torch.stack(rhs)
        alpha_t = 1.0 - sigma_t
        base = sigma_t / sigma_s * x - alpha_t * phi * m0
        if new_x0 is None:  # predictor
            if order == 1:
                return base
            weights = [torch.tensor(0.5, dtype=dtype)] if order == 2 else torch.linalg.solve(matrix[:-1, :-1], rhs[:-1])
            return base - alpha_t * b_h * sum(w * d for w, d in zip(weights, diffs, strict=True))
        weights = torch.tensor([0.5], dtype=dtype) if order == 1 else torch.linalg.solve(matrix, rhs)
        correction = sum((w * d for w, d in zip(weights[:-1], diffs, strict=True)), torch.zeros_like(x))
        return base - alpha_t * b_h * (correction + weights[-1] * (new_x0 - m0))

    def step(self, model_output: torch.Tensor, timestep, sample: torch.Tensor,
             return_dict: bool = True) -> SchedulerOutput | tuple[torch.Tensor]:
        """`model_output` is the velocity at `sample` (the point of sigmas[step_index]); returns the next point
        to call the model at (after the last step: the x0 of this call)."""
        self._require_timesteps()
        i = self._step_index
        x0 = sample - self.sigmas[i] * model_output.to(sample.dtype)
        if self._last_sample is not None:
            sample = self._update(self._last_sample, i - 1, self._last_order, x0)
        self._x0_history = (self._x0_history + [x0])[-self.config.solver_order:]
        order = min(self.config.solver_order, self.num_inference_steps - i, self._warm_steps + 1)
        self._last_sample, self._last_order = sample, order
        out = self._update(sample, i, order, None).to(sample.dtype)
        self._warm_steps = min(self._warm_steps + 1, self.config.solver_order)
        self._step_index += 1
        return SchedulerOutput(prev_sample=out) if return_dict else (out,)
