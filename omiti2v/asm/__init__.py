"""AlignVid's Attention Scaling Modulation (ASM) as removable hooks on diffusers video transformers.

    from omiti2v.asm import ASMConfig, apply_asm
    with apply_asm(pipe, ASMConfig.preset("wan2.1")):
        video = pipe(...)

Presets, sites and defaults: `omiti2v.asm.presets`; attention sites by role on any diffusers transformer:
`omiti2v.asm.sites`; scalar ASM as compile-friendly Q/K hooks and the bypass check: `omiti2v.asm.scaling`; step
gating rule: `omiti2v.asm.gating`; calibrated block lists: `omiti2v.asm.schedule`; energy formula:
`omiti2v.asm.energy`; entropy probe for calibration: `omiti2v.asm.probe`.
"""

from omiti2v.asm.blur import blur_input_image
from omiti2v.asm.config import ASMConfig
from omiti2v.asm.energy import effective_gamma
from omiti2v.asm.hooks import ASMHandle, apply_asm
from omiti2v.asm.presets import PRESETS
from omiti2v.asm.probe import EntropyProbe
from omiti2v.asm.scaling import ASMBypassedError
from omiti2v.asm.sites import find_scaling_sites

__all__ = ["ASMBypassedError", "ASMConfig", "ASMHandle", "EntropyProbe", "PRESETS", "apply_asm", "blur_input_image",
           "effective_gamma", "find_scaling_sites"]
