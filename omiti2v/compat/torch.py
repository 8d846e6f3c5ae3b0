"""Reaches into torch (2.x)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def accelerator_count_at_least_one() -> Iterator[None]:
    """`torch.accelerator.device_count()` reads at least 1 inside the block (rebinding the function on the
    `torch.accelerator` module, restored on exit). diffusers 0.42's `enable_parallelism` picks the device as
    `rank % torch.accelerator.device_count()`, a division by zero on a machine without accelerator (gloo on the
    CPU); torch has no public way to declare a device count."""
    original = torch.accelerator.device_count
    if original() == 0:
        torch.accelerator.device_count = lambda: 1
    try:
        yield
    finally:
        torch.accelerator.device_count = original
