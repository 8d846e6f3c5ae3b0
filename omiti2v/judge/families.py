"""Judges as registry entries: one class per judge name, grouped by VLM family.

A family says how transformers loads it (`model_class`), the LLM token size of its video patches, and how its
tiny offline variant is built; an entry adds the exact hub checkpoint. Every family runs through the same
VqaJudge (the paper's prompt and parser, parity and fast modes, the memory-aware batching): its prefix
positions come from the model's own `get_rope_index`, so Qwen3-VL's timestamps and interleaved M-RoPE live in
transformers, not here. Adding a judge = one entry below + one conf/judge/<name>.yaml.
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path

from ..registry import Registry

JUDGES = Registry("judge.name")


class JudgeFamily:
    """What a judge family needs besides the shared VqaJudge path."""

    name: str  # set by the registry
    family: str
    hub_id: str | None = None  # None: built offline (tiny)
    model_class: str
    merged_patch: int  # pixels per side of one LLM video token (patch x spatial merge)
    tiny_module: str  # module of this package whose `build_tiny_judge` writes the tiny offline variant

    @classmethod
    def build_tiny(cls, folder: str | Path) -> Path:
        """Write the family's tiny judge to `folder`; its builder module is imported only when one is asked for."""
        return import_module(f".{cls.tiny_module}", __package__).build_tiny_judge(folder)


class Qwen25VL(JudgeFamily):
    family = "qwen2.5-vl"
    model_class = "Qwen2_5_VLForConditionalGeneration"
    merged_patch = 28
    tiny_module = "tiny"


class Qwen3VL(JudgeFamily):
    family = "qwen3-vl"
    model_class = "Qwen3VLForConditionalGeneration"
    merged_patch = 32
    tiny_module = "tiny_qwen3"


def register_checkpoints(family: type[JudgeFamily], hub_ids: dict[str, str | None]) -> None:
    """One registry entry per judge name: `family` at that hub checkpoint (None: its tiny offline build)."""
    for name, hub_id in hub_ids.items():
        JUDGES.register(name)(type(f"{family.__name__}[{name}]", (family,), {"hub_id": hub_id}))


register_checkpoints(Qwen25VL, {
    "qwen2.5-vl-32b": "Qwen/Qwen2.5-VL-32B-Instruct",
    "qwen2.5-vl-7b": "Qwen/Qwen2.5-VL-7B-Instruct",
    "qwen2.5-vl-72b": "Qwen/Qwen2.5-VL-72B-Instruct",
    "tiny": None,
})
register_checkpoints(Qwen3VL, {
    "qwen3-vl-8b": "Qwen/Qwen3-VL-8B-Instruct",
    "qwen3-vl-32b": "Qwen/Qwen3-VL-32B-Instruct",
    "tiny-qwen3-vl": None,
})
