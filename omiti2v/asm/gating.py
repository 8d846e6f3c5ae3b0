"""Step gating from the timestep the transformer forward actually receives (never from call counts).

Rule: the step's timestep is the **maximum over every element** of the `timestep` argument (batch entries,
frames, tokens). This covers
* CFG: the conditional and unconditional calls (batched or separate) carry the same t, so both are gated alike;
* FramePack: every section restarts its schedule at t = 1000, so each section gets its own early window;
* SkyReels-V2 diffusion forcing and Wan 2.2-style per-token timesteps: clean conditioning frames/tokens carry
  t = 0, the max is the noise level of the frames being denoised; with asynchronous (ar_step > 0) schedules the
  window follows the noisiest frame, i.e. it is open while any frame is still in its early phase.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch


def timestep_value(timestep: Any) -> float:
    """max over all elements of a scalar / tensor timestep, as a Python float."""
    if isinstance(timestep, torch.Tensor):
        if timestep.numel() == 0:
            raise ValueError("the transformer was called with an empty timestep tensor")
        return float(timestep.detach().max())
    return float(timestep)


class TimestepTracker:
    """Forward pre-hook that records the current step's timestep (see module rule) on a transformer."""

    def __init__(self, transformer: torch.nn.Module):
        self._signature = inspect.signature(transformer.forward)
        if "timestep" not in self._signature.parameters:
            raise TypeError(f"{type(transformer).__name__}.forward has no `timestep` argument; cannot gate steps")
        self.current: float | None = None
        self._handle = transformer.register_forward_pre_hook(self._record, with_kwargs=True)

    def _record(self, module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        if "timestep" in kwargs:
            timestep = kwargs["timestep"]
        else:
            timestep = self._signature.bind_partial(*args, **kwargs).arguments.get("timestep")
        if timestep is None:
            raise ValueError(f"{type(module).__name__} was called without a timestep; ASM cannot gate steps")
        self.current = timestep_value(timestep)

    def remove(self) -> None:
        self._handle.remove()

