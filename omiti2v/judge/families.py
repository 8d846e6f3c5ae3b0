"""Judges as registry entries: one class per judge name, grouped by VLM family.

A family says how transformers loads it (`model_class`), the LLM token size of its video patches, and how its
tiny offline variant is built; an entry adds the exact hub checkpoint. Every family runs through the same
VqaJudge (the paper's prompt and parser, parity and fast modes, the memory-aware batching): its prefix
positions come from the model's own `get_rope_index`, so Qwen3-VL's timestamps and interleaved M-RoPE live in
transformers, not here. Adding a judge = one entry below + one conf/judge/<name>.yaml.
"""

from __future__ import annotations

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

    @classmethod
    def build_tiny(cls, folder: str | Path) -> Path:
        raise NotImplementedError


class Qwen25VL(JudgeFamily):
    family = "qwen2.5-vl"
    model_class = "Qwen2_5_VLForConditionalGeneration"
    merged_patch = 28

    @classmethod
    def build_tiny(cls, folder: str | Path) -> Path:
        from .tiny import build_tiny_judge

        return build_tiny_judge(folder)


class Qwen3VL(JudgeFamily):
    family = "qwen3-vl"
    model_class = "Qwen3VLForConditionalGeneration"
    merged_patch = 32

    @classmethod
    def build_tiny(cls, folder: str | Path) -> Path:
        from .tiny_qwen3 import build_tiny_judge

        return build_tiny_judge(folder)


@JUDGES.register("qwen2.5-vl-32b")
class Qwen25VL32B(Qwen25VL):
    hub_id = "Qwen/Qwen2.5-VL-32B-Instruct"


@JUDGES.register("qwen2.5-vl-7b")
class Qwen25VL7B(Qwen25VL):
    hub_id = "Qwen/Qwen2.5-VL-7B-Instruct"


@JUDGES.register("qwen2.5-vl-72b")
class Qwen25VL72B(Qwen25VL):
    hub_id = "Qwen/Qwen2.5-VL-72B-Instruct"


@JUDGES.register("qwen3-vl-8b")
class Qwen3VL8B(Qwen3VL):
    hub_id = "Qwen/Qwen3-VL-8B-Instruct"


@JUDGES.register("qwen3-vl-32b")
class Qwen3VL32B(Qwen3VL):
    hub_id = "Qwen/Qwen3-VL-32B-Instruct"


@JUDGES.register("tiny")
class TinyQwen25VL(Qwen25VL):
    pass


@JUDGES.register("tiny-qwen3-vl")
class TinyQwen3VL(Qwen3VL):
    pass
