"""Tokenizers built locally (no download) for `weights=random|tiny`: a byte-level BPE trained on a few strings.

Random-weight encoders only need token ids inside their vocabulary, so a small BPE that can encode any text
(byte fallback) stands in for UMT5/Llama/CLIP/Qwen tokenizers. The special tokens the diffusers pipelines look
up by name (Llama-3 chat headers, `<image>`) are added so prompt templates tokenize without errors.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

TRAINING_TEXT = (
    "a photo of a cat sitting on a red sofa in a bright living room",
    "the person walks away and the dog disappears from the scene",
    "a car drives along the road while the camera slowly pans to the left",
    "describe the video by detailing the main content and theme of the video",
    "the color, shape, size, texture, quantity, text, and spatial relationships of the objects",
)
SPECIAL_TOKENS = ("<pad>", "<s>", "</s>", "<unk>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>",
                  "<image>", "<|im_start|>", "<|im_end|>")
# Qwen2-VL style chat layout (what EasyAnimate's pipeline feeds through apply_chat_template).
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% for c in m['content'] %}{{ c['text'] }}{% endfor %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@lru_cache(maxsize=4)
def _trained_bpe(vocab_size: int) -> Tokenizer:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(TRAINING_TEXT, trainer)
    return tok


def local_tokenizer(max_length: int = 512, vocab_size: int = 400) -> PreTrainedTokenizerFast:
    """A fast tokenizer with pad/bos/eos, the Llama-3 chat specials and a chat template; ids < vocab_size.
    transformers loads here, not when a baseline module is imported (the preflight imports them)."""
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=_trained_bpe(vocab_size),
        pad_token="<pad>", bos_token="<s>", eos_token="</s>", unk_token="<unk>", model_max_length=max_length,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer
