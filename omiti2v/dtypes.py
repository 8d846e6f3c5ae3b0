"""The floating-point precisions a config may name (`model.dtype`, `model.precision.*`, `judge.dtype`, a scorer's
`dtype`), and the torch dtype of each: one list for every group."""

from __future__ import annotations

DTYPE_NAMES = ("float32", "bfloat16", "float16")


def torch_dtype(name: str):
    """The torch dtype called `name` (one of DTYPE_NAMES); KeyError for any other name."""
    import torch

    return {n: getattr(torch, n) for n in DTYPE_NAMES}[name]
