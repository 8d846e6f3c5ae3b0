"""Model registry of the seven paper baselines and the newer ones (modern.py), with their builders
(pretrained / random real-size / tiny). Their numbers live in conf/model/<name>.yaml (`model_settings`)."""

from . import easyanimate, framepack, hunyuan, modern, skyreels, wan  # noqa: F401  (register the entries)
from .base import DTYPES, WEIGHTS, Baseline, WeightsNotFoundError
from .registry import MODELS, get_baseline, register_model
from .settings import model_names, model_settings
from .sizing import bucket_size, fit_image, max_area_size, target_size


def baseline_for(model_cfg) -> Baseline:
    """The registry entry named by `cfg.model.baseline` (or, failing that, `cfg.model.name`)."""
    return get_baseline(model_cfg.get("baseline") or model_cfg["name"])


__all__ = ["DTYPES", "MODELS", "WEIGHTS", "Baseline", "WeightsNotFoundError", "baseline_for", "bucket_size",
           "fit_image", "get_baseline", "max_area_size", "model_names", "model_settings", "register_model",
           "target_size"]
