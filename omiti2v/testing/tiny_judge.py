"""Qwen2.5-VL judges built offline: random weights, a locally trained tokenizer, the real processor classes.

The tiny one runs every code path of the real judge (chat template, video processor, M-RoPE, cache reuse,
generate) in seconds on a CPU, for the tests and the smoke run; `family_config` also builds the published
shapes (public.py), for the memory planner's tests and the GPU benchmark. Their answers are meaningless.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import torch

SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

# Qwen2-VL's conversation format (system default, role headers, vision placeholders), written for this builder.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'video' or 'video' in part %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif part['type'] == 'image' or 'image' in part %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif 'text' in part %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Enough text for the BPE to learn whole-word "Yes"/"No" (with and without a leading space) and the prompt words.
_CORPUS = [
    "Yes", "No", "Yes, the car is red.", "No, the dog is not there.", "yes", "no",
    "Question: Is there a red car in the video?",
    "Please watch the video carefully and answer the question based solely on what you observe.",
    "Reply with 'yes' or 'no' followed by a brief explanation of your reasoning.",
    "You are a helpful assistant.", "system", "user", "assistant",
    "The answer is Yes because the object appears. The answer is No because it is missing.",
]


def special_token_ids(tokenizer) -> dict[str, int]:
    """Token -> id of every special token, as the configs below wire them."""
    return {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}


def vision_token_ids(ids: dict[str, int]) -> dict[str, int]:
    """The placeholder-token keywords every Qwen-VL config takes, from `special_token_ids`."""
    return dict(image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
                vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"])


def text_token_ids(ids: dict[str, int]) -> dict[str, int]:
    """The text config's bos/eos/pad ids, as the chat checkpoints set them, from `special_token_ids`."""
    return dict(bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"])


def random_chat_model(model_class, config, ids: dict[str, int], seed: int):
    """`model_class(config)` with weights drawn from `seed`, generating until <|im_end|> (or <|endoftext|>) and
    padding with <|endoftext|>, as the chat checkpoints do."""
    torch.manual_seed(seed)
    model = model_class(config).eval()
    model.generation_config.eos_token_id = [ids["<|im_end|>"], ids["<|endoftext|>"]]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    return model


def family_config(tokenizer, text: dict, vision: dict):
    """A Qwen2_5_VLConfig of these text and vision shapes (public.py: the checkpoints'), wired to `tokenizer`'s
    special tokens."""
    from transformers import Qwen2_5_VLConfig

    ids = special_token_ids(tokenizer)
    return Qwen2_5_VLConfig(text_config={**text, **text_token_ids(ids)}, vision_config=vision, **vision_token_ids(ids))


def build_tiny_tokenizer(named_tokens: dict[str, str] | None = None, chat_template: str = CHAT_TEMPLATE):
    """A byte-level BPE trained on a few strings, wrapped in the real Qwen2 tokenizer class. `named_tokens`: extra
    special tokens the family's processor reads by name (e.g. InternVL's `tokenizer.video_token`)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import AddedToken
    from transformers.models.qwen2.tokenization_qwen2 import Qwen2Tokenizer

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=420, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    bpe.train_from_iterator(_CORPUS * 20, trainer)
    model = json.loads(bpe.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    named = {"extra_special_tokens": named_tokens} if named_tokens else {}
    tok = Qwen2Tokenizer(vocab=model["vocab"], merges=merges, unk_token=None, eos_token="<|im_end|>",
                         pad_token="<|endoftext|>", **named)
    tokens = (*SPECIAL_TOKENS, *(named_tokens or {}).values())
    tok.add_tokens([AddedToken(t, special=True, normalized=False) for t in tokens], special_tokens=True)
    tok.chat_template = chat_template
    return tok


# The tiny shapes (the checkpoints' are in public.py): every code path of the real judge in seconds on a CPU.
TINY_TEXT = {
    "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
    "num_key_value_heads": 2, "max_position_embeddings": 4096,
    "rope_parameters": {"rope_type": "default", "mrope_section": [2, 3, 3], "rope_theta": 10000.0},
}
TINY_VISION = {
    "depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 64, "patch_size": 14,
    "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": 56, "fullatt_block_indexes": [1],
    "tokens_per_second": 2,
}
FRAME_SIZE = {"shortest_edge": 28 * 28, "longest_edge": 28 * 28 * 768}  # small floor so tiny test videos stay tiny


def build_tiny_processor(tokenizer=None, size: dict = FRAME_SIZE):
    from transformers import Qwen2_5_VLProcessor, Qwen2VLImageProcessor, Qwen2VLVideoProcessor

    return Qwen2_5_VLProcessor(
        image_processor=Qwen2VLImageProcessor(size=size),
        tokenizer=tokenizer or build_tiny_tokenizer(),
        video_processor=Qwen2VLVideoProcessor(size=size),
        chat_template=CHAT_TEMPLATE,
    )


def public_processor(vision: dict):
    """The tiny tokenizer with the checkpoints' frame-size range (the real-size benchmark)."""
    return build_tiny_processor(size={"shortest_edge": 3136, "longest_edge": 12845056})


def build_tiny_model(tokenizer, seed: int = 0):
    from transformers import Qwen2_5_VLForConditionalGeneration

    ids = special_token_ids(tokenizer)
    config = family_config(tokenizer, {**TINY_TEXT, "vocab_size": len(tokenizer)}, TINY_VISION)
    model = random_chat_model(Qwen2_5_VLForConditionalGeneration, config, ids, seed)
    model.generation_config.bos_token_id = ids["<|endoftext|>"]
    return model


def save_atomically(folder: str | Path, write) -> Path:
    """`write(staging)` then rename staging to `folder`: a concurrent or killed build never leaves a half-written
    folder. An existing folder is kept as is."""
    folder = Path(folder)
    if (folder / "config.json").exists():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    write(staging)
    try:
        staging.rename(folder)
    except OSError:  # another process finished first
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def write_judge(folder: str | Path, processor, model) -> Path:
    """Save a judge's model and processor to `folder` atomically, loadable like any hub checkpoint."""
    return save_atomically(folder, lambda staging: (model.save_pretrained(staging), processor.save_pretrained(staging)))


def tiny_family_model(model_class, family_config, tokenizer, text: dict, vision: dict, seed: int):
    """A random tiny model of a family: its `family_config` at these shapes, with the tokenizer's vocabulary."""
    config = family_config(tokenizer, {**text, "vocab_size": len(tokenizer)}, vision)
    return random_chat_model(model_class, config, special_token_ids(tokenizer), seed)


def build_tiny_judge(folder: str | Path, seed: int = 0) -> Path:
    """Write a tiny Qwen2.5-VL (model + processor) to `folder`."""
    processor = build_tiny_processor()
    return write_judge(folder, processor, build_tiny_model(processor.tokenizer, seed))
