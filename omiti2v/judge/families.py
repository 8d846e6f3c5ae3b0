"""Judges as registry entries: one class per judge name, grouped by VLM family.

A family says how transformers loads it (`model_class`), how its processor turns a batch of prefixes into model
inputs, where the prompt's video ends, which positions the prefix tokens take, how its frames are sized, and how
its tiny offline variant is built; an entry adds the exact hub checkpoint. Every family runs through the same
VqaJudge (the paper's prompt and parser, parity and fast modes, the memory-aware batching). The Qwen families'
prefix positions come from the model's own `get_rope_index` (Qwen3-VL's timestamps and interleaved M-RoPE live
in transformers, not here); InternVL's are 1-D, so question text continues at the prefix's length.
Adding a judge = its name below + one conf/judge/<name>.yaml (which holds its checkpoint).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from importlib import import_module
from pathlib import Path

import torch

from ..compat.transformers import rope_positions
from ..paper_settings import judge_checkpoint
from ..registry import Registry
from .video import VideoPlan, VideoSpec

JUDGES = Registry("judge.name", base="omiti2v.judge.families:JudgeFamily", name_attr="name")


@dataclasses.dataclass(frozen=True)
class PrefixPositions:
    """Positions of a batch's prefix rows, shaped as the model takes them: (3, rows, width) M-RoPE or (rows, width)
    1-D; `following` (rows,) is each row's first text position after its prefix. `in_prefill`: the prefill forward
    needs them passed (False: the model's own rule gives the same positions)."""

    ids: torch.Tensor
    following: torch.Tensor
    in_prefill: bool


class JudgeFamily:
    """What a judge family needs besides the shared VqaJudge path."""

    name: str  # set by the registry
    family: str
    hub_id: str | None = None  # None: built offline (tiny)
    model_class: str
    tiny_module: str  # module whose `build_tiny_judge` writes the tiny offline variant (omiti2v/testing/)

    @classmethod
    def build_tiny(cls, folder: str | Path) -> Path:
        """Write the family's tiny judge to `folder`; its builder module is imported only when one is asked for."""
        return import_module(cls.tiny_module).build_tiny_judge(folder)

    @staticmethod
    def encode(processor, texts: Sequence[str], videos: Sequence) -> dict:
        """One processor call for the batch: token rows (left padded) and video tensors."""
        return processor(text=list(texts), videos=[v.frames for v in videos], video_metadata=[v.metadata for v in videos],
                         do_sample_frames=False, padding=True, return_tensors="pt")


class QwenVL(JudgeFamily):
    """Qwen2.5-VL and Qwen3-VL: <|vision_start|><|video_pad|><|vision_end|>, M-RoPE from `get_rope_index`."""

    merged_patch: int  # pixels per side of one LLM video token (patch x spatial merge)

    @classmethod
    def video_spec(cls, spec: VideoSpec, processor) -> VideoSpec:
        return dataclasses.replace(spec, merged_patch=cls.merged_patch)

    @staticmethod
    def video_end_marker(processor) -> str:
        return getattr(processor, "vision_end_token", "<|vision_end|>")  # Qwen2.5-VL's processor does not name it

    @staticmethod
    def prefix_length(judge, plan: VideoPlan) -> int:
        return judge.prefix_tokens + plan.video_tokens

    @staticmethod
    def prefix_positions(model, enc, text_id: int) -> PrefixPositions:
        """The model's own rule, asked with one text token appended (the rule for text after a video changes
        across transformers versions)."""
        rows = enc["input_ids"].shape[0]
        extended = {}
        for k, v in enc.items():
            if torch.is_tensor(v) and v.shape[:2] == enc["input_ids"].shape:  # per-token keys: one more text token
                extra = text_id if k == "input_ids" else int(k == "attention_mask")
                v = torch.cat([v, torch.full((rows, 1), extra, dtype=v.dtype)], dim=1)
            extended[k] = v
        positions = rope_positions(model, **extended)
        return PrefixPositions(positions[:, :, :-1], positions[0, :, -1], in_prefill=False)


class Qwen25VL(QwenVL):
    family = "qwen2.5-vl"
    model_class = "Qwen2_5_VLForConditionalGeneration"
    merged_patch = 28
    tiny_module = "omiti2v.testing.tiny_judge"


class Qwen3VL(QwenVL):
    family = "qwen3-vl"
    model_class = "Qwen3VLForConditionalGeneration"
    merged_patch = 32
    tiny_module = "omiti2v.testing.tiny_judge_qwen3"


class InternVL(JudgeFamily):
    """InternVL3.5 (-HF checkpoints): "<video>" expands to "FrameN: <img>...</img>" per frame, each frame one tile
    of the processor's size; plain 1-D positions."""

    family = "internvl"
    model_class = "InternVLForConditionalGeneration"
    tiny_module = "omiti2v.testing.tiny_judge_internvl"

    @classmethod
    def video_spec(cls, spec: VideoSpec, processor) -> VideoSpec:
        """Frames resized straight to the processor's tile (its model card: one 448x448 tile per frame), one LLM
        token per merged patch of a single frame."""
        size = processor.video_processor.size
        height, width = size["height"], size["width"]
        return dataclasses.replace(spec, frame_size=(height, width), temporal_patch=1,
                                   merged_patch=height // math.isqrt(processor.image_seq_length))

    @staticmethod
    def video_end_marker(processor) -> str:
        return processor.video_token

    @staticmethod
    def prefix_length(judge, plan: VideoPlan) -> int:
        """The processor's own expansion of the video for that many frames, tokenized."""
        frames = {"pixel_values_videos": [torch.empty(len(plan.indices), 0)]}
        text = judge.prefix_text.replace(judge.processor.video_token, judge.processor.replace_video_token(frames, 0))
        return len(judge.tokenizer.encode(text, add_special_tokens=False))

    @staticmethod
    def encode(processor, texts: Sequence[str], videos: Sequence) -> dict:
        """One processor call per video (InternVLProcessor stacks a batch's frames, so it needs equal frame counts),
        rows left padded to the longest; the frames are concatenated in row order, as the model fills them in."""
        from transformers import BatchFeature

        parts = [JudgeFamily.encode(processor, [text], [video]) for text, video in zip(texts, videos, strict=True)]
        width = max(p["input_ids"].shape[1] for p in parts)
        pad = {"input_ids": processor.tokenizer.pad_token_id}
        merged = {}
        for key in parts[0]:
            if key in ("input_ids", "attention_mask", "mm_token_type_ids"):
                merged[key] = torch.cat([torch.nn.functional.pad(p[key], (width - p[key].shape[1], 0), value=pad.get(key, 0))
                                         for p in parts])
            else:
                merged[key] = torch.cat([p[key] for p in parts])
        return BatchFeature(merged)

    @staticmethod
    def prefix_positions(model, enc, text_id: int) -> PrefixPositions:
        mask = enc["attention_mask"]
        positions = (mask.long().cumsum(-1) - 1).clamp(min=0)
        return PrefixPositions(positions, mask.sum(-1), in_prefill=True)


def family_of(model) -> type[JudgeFamily]:
    """The family whose transformers class `model` is."""
    for entry in JUDGES.values():
        if entry.model_class == type(model).__name__:
            return entry
    raise ValueError(f"no judge family loads {type(model).__name__}; families: {sorted({e.family for e in JUDGES.values()})}")


def register_checkpoints(family: type[JudgeFamily], names: Sequence[str]) -> None:
    """One registry entry per judge name: `family` at the checkpoint its conf/judge/<name>.yaml names (`model`;
    "tiny": its tiny offline build)."""
    for name in names:
        checkpoint = judge_checkpoint(name)
        hub_id = None if checkpoint == "tiny" else checkpoint
        JUDGES.register(name)(type(f"{family.__name__}[{name}]", (family,), {"hub_id": hub_id}))


register_checkpoints(Qwen25VL, ("qwen2.5-vl-32b", "qwen2.5-vl-7b", "qwen2.5-vl-72b", "tiny"))
register_checkpoints(Qwen3VL, ("qwen3-vl-8b", "qwen3-vl-32b", "tiny-qwen3-vl"))
# The transformers-format (-HF) checkpoints of the InternVL3.5 collection, https://huggingface.co/collections/internlm/internvl35
register_checkpoints(InternVL, ("internvl3.5-8b", "internvl3.5-38b", "tiny-internvl"))
