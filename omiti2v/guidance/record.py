"""What a run's videos were made with, as one method of the comparison: summary.json `method` (plain Python).

A run is one point of one method's strength sweep: the guidance method at its strength when one is set (on top
of any ASM, named "<asm>+<method>"), else the ASM strategy at its gamma (scalar, energy), else the untouched
model or a pilot without a knob (none, blur-image, blur-key). `forwards_per_step` is the transformer forwards per
denoising step the sampler runs (mean over the schedule), the cost unit of the comparison.
"""

from __future__ import annotations

from typing import Any

from omiti2v.guidance.config import GuidanceConfig

GAMMA_STRATEGIES = ("scalar", "energy")


def method_record(asm_name: str | None, asm_strategy: str | None, asm_gamma: float | None, guidance: GuidanceConfig,
                  forwards_per_step: float) -> dict[str, Any]:
    """summary.json `method`: name, knob, strength, forwards_per_step and the guidance settings (None without)."""
    asm_name = asm_name or "none"
    if guidance.active:
        name = guidance.method if asm_name == "none" else f"{asm_name}+{guidance.method}"
        knob, strength = guidance.knob, guidance.strength
    elif asm_strategy in GAMMA_STRATEGIES:
        name, knob, strength = asm_name, "ASM gamma", asm_gamma
    else:
        name, knob, strength = asm_name, None, None
    return {"name": name, "knob": knob, "strength": None if strength is None else float(strength),
            "forwards_per_step": round(float(forwards_per_step), 4),
            "guidance": guidance.record() if guidance.active else None}
