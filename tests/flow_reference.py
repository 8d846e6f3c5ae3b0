"""What the flow-matching solver tests share: a toy flow with a closed form and the exponential-integrator
functions by quadrature (written from their definitions, never from a solver's code)."""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import torch
from scipy.integrate import quad

# Gaussian data N(mean, std^2) per element, x_t = (1 - t) x0 + t eps: closed-form velocity and denoiser.
MEAN, STD = np.linspace(-1.5, 2.0, 12), np.linspace(0.2, 1.6, 12)


@cache
def phi(k: int, z: float) -> float:
    """phi_k(z) = integral_0^1 exp((1 - u) z) u^(k-1) / (k-1)! du (the exponential-integrator functions)."""
    return quad(lambda u: math.exp((1 - u) * z) * u ** (k - 1) / math.factorial(k - 1), 0.0, 1.0,
                epsabs=0.0, epsrel=1e-12)[0]


def gaussian_denoiser(x, t):
    var = (1 - t) ** 2 * STD ** 2 + t ** 2
    return MEAN + (1 - t) * STD ** 2 / var * (x - (1 - t) * MEAN)


def gaussian_velocity(x, t):
    var = (1 - t) ** 2 * STD ** 2 + t ** 2
    centred = x - (1 - t) * MEAN
    return t / var * centred - (MEAN + (1 - t) * STD ** 2 / var * centred)


def torch_velocity(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """The Gaussian velocity on a float64 tensor (what a scheduler's model call returns)."""
    return torch.from_numpy(gaussian_velocity(x.numpy(), sigma))


def run_recording(pipe, kwargs: dict) -> tuple[list[dict], list[torch.Tensor]]:
    """Run a pipeline to latents; return the keyword inputs of every transformer call and the latents after
    every step."""
    calls, after_step = [], []

    def record(module, args, kw):
        calls.append({k: v.clone() if torch.is_tensor(v) else v for k, v in kw.items()})

    def keep_latents(pipeline, i, t, tensors):
        after_step.append(tensors["latents"].clone())
        return {}

    handle = pipe.transformer.register_forward_pre_hook(record, with_kwargs=True)
    try:
        with torch.no_grad():
            pipe(**{**kwargs, "output_type": "latent"}, generator=torch.Generator("cpu").manual_seed(0),
                 callback_on_step_end=keep_latents, callback_on_step_end_tensor_inputs=["latents"])
    finally:
        handle.remove()
    return calls, after_step
