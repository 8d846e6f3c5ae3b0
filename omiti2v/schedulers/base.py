"""What the harness's flow-matching solvers share in the diffusers scheduler protocol."""

from __future__ import annotations

import torch
from diffusers.configuration_utils import ConfigMixin
from diffusers.schedulers.scheduling_utils import SchedulerMixin


def check_choice(name: str, value: str, choices) -> None:
    if value not in choices:
        raise ValueError(f"{name}: expected one of {sorted(choices)}, got {value!r}")


class OneCallPerStepScheduler(SchedulerMixin, ConfigMixin):
    """One model call per step (the pipeline's progress bar and warm-up logic count `order` so), no input
    scaling, a step counter; subclasses set `sigmas`/`timesteps` in `set_timesteps` and reset their state in
    `_reset_solver`."""

    order = 1

    def _start(self) -> None:
        self.init_noise_sigma = 1.0
        self.sigmas = self.timesteps = None
        self.num_inference_steps = 0
        self._reset_solver()

    def _reset_solver(self) -> None:
        raise NotImplementedError

    @property
    def step_index(self) -> int:
        return self._step_index

    def scale_model_input(self, sample: torch.Tensor, timestep=None) -> torch.Tensor:
        return sample

    def _require_timesteps(self) -> None:
        if self.sigmas is None:
            raise RuntimeError("call set_timesteps before step")


def unipc_system(nodes, h_phi_1, hh, b_h, order: int) -> tuple[list, list]:
    """The rows of the UniPC linear system for orders 1..`order`: nodes^(k-1) and k! * hh * phi_{k+1}(hh) / B(h),
    the phi functions by their recurrence from h_phi_1 = expm1(hh) (hh = -h). Floats, numpy arrays and torch
    tensors alike; the caller stacks them in its own precision."""
    rows, rhs, term, factorial = [], [], h_phi_1 / hh - 1.0, 1
    for k in range(1, order + 1):
        rows.append(nodes ** (k - 1))
        rhs.append(term * factorial / b_h)
        factorial *= k + 1
        term = term / hh - 1.0 / factorial
    return rows, rhs
