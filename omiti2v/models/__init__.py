"""Model registry of the seven paper baselines and the newer ones (modern.py), with their builders
(pretrained / random real-size / tiny)."""

from . import framepack, modern  # noqa: F401  (register framepack/-f1 and the newer baselines)
from .registry import (
    DTYPES,
    MODELS,
    WEIGHTS,
    Baseline,
    WeightsNotFoundError,
    get_baseline,
    register_model,
)
from .sizing import bucket_size, fit_image, max_area_size, target_size


def baseline_for(model_cfg) -> Baseline:
    """The registry entry named by `cfg.model.baseline` (or, failing that, `cfg.model.name`)."""
    return get_baseline(model_cfg.get("baseline") or model_cfg["name"])


__all__ = ["DTYPES", "MODELS", "WEIGHTS", "Baseline", "WeightsNotFoundError", "baseline_for", "bucket_size",
           "fit_image", "get_baseline", "max_area_size", "register_model", "target_size"]
