"""The model registry: `@register_model(name)` entries (base.Baseline subclasses, one module per family), looked up
by `cfg.model.baseline`. Their numbers come from conf/model/<name>.yaml (settings.py)."""

from __future__ import annotations

from ..registry import Registry

MODELS: Registry = Registry("model.baseline")
register_model = MODELS.register


def get_baseline(name: str):
    """The registry entry for a baseline name (a `-tiny` suffix is accepted: same entry, tiny weights)."""
    return MODELS.lookup(name.removesuffix("-tiny"))()
