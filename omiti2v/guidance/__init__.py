"""Sampling-guidance methods for the comparison with AlignVid (conf/guidance/, docs/methods.md).

    from omiti2v.guidance import GuidanceConfig, apply_guidance
    with apply_guidance(pipe, GuidanceConfig("cfg", 5.0).resolved(1.0)) as handle:
        video = pipe(**handle.prepare(pipe, call_kwargs))

Settings: `omiti2v.guidance.config`; each method's passes and combination (diffusers guiders):
`omiti2v.guidance.methods`; the adapter around the transformer call: `omiti2v.guidance.adapter`; the config rule:
`omiti2v.guidance.check`; the summary's `method` record: `omiti2v.guidance.record`. The package imports torch and
diffusers only when the adapter or the methods are asked for, so config checks and reports stay light.
"""

from omiti2v.guidance.config import GUIDANCE_METHODS, KNOBS, METHODS, GuidanceConfig
from omiti2v.registry import lazy_exports

__getattr__ = lazy_exports(__name__, {".adapter": ("apply_guidance", "GuidanceHandle"),
                                      ".methods": ("forwards_per_step",)})


__all__ = ["GUIDANCE_METHODS", "KNOBS", "METHODS", "GuidanceConfig", "GuidanceHandle", "apply_guidance",
           "forwards_per_step"]
