"""AlignVid's Attention Scaling Modulation (ASM) as removable hooks on diffusers video transformers.

    from omiti2v.asm import ASMConfig, apply_asm
    with apply_asm(pipe, ASMConfig.preset("wan2.1")):
        video = pipe(...)

Presets, sites and defaults: `omiti2v.asm.presets`; attention sites by role on any diffusers transformer:
`omiti2v.asm.sites`; scalar ASM as compile-friendly Q/K hooks: `omiti2v.asm.scaling`; the per-step state every
strategy shares and the bypass check: `omiti2v.asm.lifecycle`; step gating rule: `omiti2v.asm.gating`;
calibrated block lists: `omiti2v.asm.schedule`; energy formula: `omiti2v.asm.energy`; entropy probe for
calibration: `omiti2v.asm.probe`.
"""

from omiti2v.registry import lazy_exports

# The hooks need torch and diffusers: they load on first use, so the config's names and rules stay light.
__getattr__ = lazy_exports(__name__, {
    ".blur": ("blur_input_image",),
    ".config": ("ASMConfig",),
    ".energy": ("effective_gamma",),
    ".hooks": ("ASMHandle", "apply_asm"),
    ".lifecycle": ("ASMBypassedError",),
    ".presets": ("PRESETS",),
    ".probe": ("EntropyProbe",),
    ".sites": ("find_scaling_sites",),
})

__all__ = ["ASMBypassedError", "ASMConfig", "ASMHandle", "EntropyProbe", "PRESETS", "apply_asm", "blur_input_image",
           "effective_gamma", "find_scaling_sites"]
