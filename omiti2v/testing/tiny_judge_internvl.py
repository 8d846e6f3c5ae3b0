"""A tiny InternVL3.5 judge built offline: random weights, the tiny tokenizer of tiny.py, the real InternVL classes.

It runs InternVL's own path (each frame a separate 448x448-style tile behind "FrameN: <img>...</img>", pixel
shuffle, a Qwen3 language model with plain 1-D positions) through the same VqaJudge as the Qwen families, for the
tests and the judge-agreement smoke run. Its answers are meaningless.
"""

from __future__ import annotations

from pathlib import Path

from .tiny_judge import (
    build_tiny_tokenizer,
    special_token_ids,
    text_token_ids,
    tiny_family_model,
    write_judge,
)

# The placeholder tokens InternVLProcessor reads from its tokenizer by name, as the -HF checkpoints spell them.
NAMED_TOKENS = {"start_image_token": "<img>", "end_image_token": "</img>", "context_image_token": "<IMG_CONTEXT>",
                "video_token": "<video>"}

# InternVL's -HF conversation format (no default system turn; a video part is "<video>\n"), written for this builder.
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'video' %}<video>\n"
    "{% elif part['type'] == 'image' %}<IMG_CONTEXT>\n"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

FRAME = 56  # tile side in pixels: 4x4 patches of 14, pixel-shuffled to 2x2 = 4 LLM tokens per frame
TINY_TEXT = {
    "model_type": "qwen3", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
    "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "max_position_embeddings": 4096,
    "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0},
}
TINY_VISION = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
               "image_size": FRAME, "patch_size": 14, "attention_bias": True}


def tokens_per_frame(frame: int, patch: int = 14) -> int:
    """LLM tokens of one tile: its patches, pixel-shuffled 2x2 (downsample_ratio 0.5)."""
    return (frame // patch // 2) ** 2


def build_tiny_processor(tokenizer=None, frame: int = FRAME):
    from transformers import GotOcr2ImageProcessor, InternVLProcessor, InternVLVideoProcessor

    size = {"height": frame, "width": frame}
    return InternVLProcessor(
        image_processor=GotOcr2ImageProcessor(size=size),
        tokenizer=tokenizer or build_tiny_tokenizer(NAMED_TOKENS, CHAT_TEMPLATE),
        video_processor=InternVLVideoProcessor(size=size),
        image_seq_length=tokens_per_frame(frame),
        chat_template=CHAT_TEMPLATE,
    )


def public_processor(vision: dict):
    """The tiny tokenizer with the checkpoint's tile (448x448, 256 tokens a frame)."""
    return build_tiny_processor(frame=vision["image_size"])


def family_config(tokenizer, text: dict, vision: dict):
    """An InternVLConfig of these text and vision shapes, wired to `tokenizer`'s special tokens."""
    from transformers import InternVLConfig

    return InternVLConfig(text_config={**text, **text_token_ids(special_token_ids(tokenizer))}, vision_config=vision,
                          image_token_id=tokenizer.context_image_token_id,
                          image_seq_length=tokens_per_frame(vision["image_size"], vision["patch_size"]),
                          tie_word_embeddings=text.get("tie_word_embeddings", True))


def build_tiny_model(tokenizer, seed: int = 0):
    from transformers import InternVLForConditionalGeneration

    return tiny_family_model(InternVLForConditionalGeneration, family_config, tokenizer, TINY_TEXT, TINY_VISION, seed)


def build_tiny_judge(folder: str | Path, seed: int = 0) -> Path:
    """Write a tiny InternVL (model + processor) to `folder`, loadable like any -HF checkpoint."""
    processor = build_tiny_processor()
    return write_judge(folder, processor, build_tiny_model(processor.tokenizer, seed))
