"""A tiny Qwen3-VL judge built offline: random weights, the tiny tokenizer of tiny.py, the real Qwen3-VL classes.

It runs Qwen3-VL's own path (patch 16, timestamps between frames, interleaved M-RoPE, deepstack) through the
same VqaJudge as Qwen2.5-VL, for the tests and the judge-agreement smoke run. Its answers are meaningless.
"""

from __future__ import annotations

from pathlib import Path

from .tiny_judge import (
    CHAT_TEMPLATE,
    build_tiny_tokenizer,
    special_token_ids,
    text_token_ids,
    tiny_family_model,
    vision_token_ids,
    write_judge,
)

FRAME_SIZE = {"shortest_edge": 32 * 32, "longest_edge": 32 * 32 * 768}  # small floor so tiny test videos stay tiny
TINY_TEXT = {
    "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
    "num_key_value_heads": 2, "head_dim": 16, "max_position_embeddings": 4096,
    "rope_parameters": {"rope_type": "default", "mrope_section": [2, 3, 3], "mrope_interleaved": True,
                        "rope_theta": 10000.0},
}
TINY_VISION = {
    "depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 64, "patch_size": 16,
    "spatial_merge_size": 2, "temporal_patch_size": 2, "num_position_embeddings": 64, "deepstack_visual_indexes": [0],
}


def build_tiny_processor(tokenizer=None):
    from transformers import Qwen2VLImageProcessor, Qwen3VLProcessor, Qwen3VLVideoProcessor

    return Qwen3VLProcessor(
        image_processor=Qwen2VLImageProcessor(size=FRAME_SIZE, patch_size=16),
        tokenizer=tokenizer or build_tiny_tokenizer(),
        video_processor=Qwen3VLVideoProcessor(size=FRAME_SIZE, cap_pixels_per_frame=True),
        chat_template=CHAT_TEMPLATE,
    )


def public_processor(vision: dict):
    """The tiny processor: its frame-size range holds the paper's frames, so they reach the model unresized."""
    return build_tiny_processor()


def family_config(tokenizer, text: dict, vision: dict):
    """A Qwen3VLConfig of these text and vision shapes, wired to `tokenizer`'s special tokens."""
    from transformers import Qwen3VLConfig

    ids = special_token_ids(tokenizer)
    return Qwen3VLConfig(text_config={**text, **text_token_ids(ids)}, vision_config=vision, **vision_token_ids(ids))


def build_tiny_model(tokenizer, seed: int = 0):
    from transformers import Qwen3VLForConditionalGeneration

    return tiny_family_model(Qwen3VLForConditionalGeneration, family_config, tokenizer, TINY_TEXT, TINY_VISION, seed)


def build_tiny_judge(folder: str | Path, seed: int = 0) -> Path:
    """Write a tiny Qwen3-VL (model + processor) to `folder`, loadable like any hub checkpoint."""
    processor = build_tiny_processor()
    return write_judge(folder, processor, build_tiny_model(processor.tokenizer, seed))
