"""Model registry of the seven paper baselines and the newer ones (modern.py), with their builders
(pretrained / random real-size / tiny). Their numbers live in conf/model/<name>.yaml (`model_settings`).
The families (and diffusers with them) load on first use."""

from ..registry import lazy_exports
from .registry import MODELS, get_baseline
from .settings import DTYPE_NAMES, WEIGHTS, model_names, model_settings
from .sizing import bucket_size, fit_image, max_area_size, target_size

__getattr__ = lazy_exports(__name__, {".base": ("DTYPES", "Baseline", "WeightsNotFoundError")})


def baseline_for(model_cfg):
    """The registry entry named by `cfg.model.baseline` (or, failing that, `cfg.model.name`)."""
    return get_baseline(model_cfg.get("baseline") or model_cfg["name"])


__all__ = ["DTYPES", "DTYPE_NAMES", "MODELS", "WEIGHTS", "Baseline", "WeightsNotFoundError", "baseline_for",
           "bucket_size", "fit_image", "get_baseline", "max_area_size", "model_names", "model_settings", "target_size"]
