"""A VLM as a yes/no judge: loading, prompt building, and the two answering modes (any family of families.py).

The prompt up to the end of the video (system turn, user header, video) is the same for every question of a
sample, so it runs once per sample (vision tower and 4-6k LLM tokens) and is never copied per question. Every
question token gets the position it has in that question's own prompt, by the family's rule: Qwen's M-RoPE text
after the video continues from the prefix's largest position + 1 in all three axes; InternVL's 1-D positions
continue at the prefix's length.

- parity: the paper's procedure (greedy `generate`, free text, the parsing rule). The batch's prefixes are
  prefilled once into one cache (one row per sample; a DynamicCache, or a StaticCache with
  `decode_cache=static`); the questions are then generated in rounds, round j asking every sample's j-th question
  from that cache, which is rewound to the prefix after each round.
  One prefix copy per sample; in float32 the replies are token-identical to generating each question alone.
- fast: one forward per sample over [prefix, question 1, ..., question n] with a 4-D attention mask that lets
  each question see the prefix and itself only; no cache is kept. P(yes) comes from the next-token logits of
  "Yes" and "No" at each question's last token (no leading space: the reply starts after the assistant header).
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from ..errors import SetupError
from .families import JudgeFamily, PrefixPositions, family_of
from .protocol import question_text
from .video import JudgeVideo, VideoPlan
from .vision_attention import install_batched_window_attention


class JudgeWeightsError(SetupError, RuntimeError):
    """The judge checkpoint is neither a local folder nor in the local Hugging Face cache."""


DECODE_CACHES = ("dynamic", "static")
# static caches are sized in steps of this many tokens, so batches of similar videos share one compiled decoder
STATIC_CACHE_STEP = 1024
DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32, "auto": "auto"}


def load_judge_model(model_id: str, dtype: str = "bfloat16", device_map: str | None = "auto", device: str = "cpu",
                     attn_implementation: str | None = "sdpa", model_class: str = "Qwen2_5_VLForConditionalGeneration"):
    """(model, processor) from a hub id or local folder; one clear error when the weights are not available.
    `model_class`: the transformers class of the judge's family (omiti2v/judge/families.py)."""
    import transformers
    from transformers import AutoProcessor

    if dtype not in DTYPES:
        raise ValueError(f"judge.dtype: {dtype!r} is not one of {sorted(DTYPES)}")
    kwargs = {"dtype": DTYPES[dtype]}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    if device_map:
        kwargs["device_map"] = device_map
    try:
        processor = AutoProcessor.from_pretrained(model_id)
        model = getattr(transformers, model_class).from_pretrained(model_id, **kwargs)
    except OSError as exc:
        where = "local folder" if Path(model_id).exists() else "hub id"
        raise JudgeWeightsError(
            f"judge.model={model_id!r} ({where}): the judge's weights are not available here "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}). Download them on a machine "
            f"with network access, e.g. `hf download {model_id if where == 'hub id' else 'Qwen/Qwen2.5-VL-32B-Instruct'} "
            f"--local-dir DIR`, then set judge.model=DIR (or point HF_HOME / HF_HUB_CACHE at a cache holding them)."
        ) from exc
    if not device_map:
        model.to(device)
    install_batched_window_attention(model)
    return model.eval(), processor


@dataclasses.dataclass
class SampleItem:
    """One sample to judge: its processed video and its question texts."""

    video: JudgeVideo
    questions: Sequence[str]


class VqaJudge:
    """Answers yes/no questions about videos with a VLM and its processor; `family`: the model's by default."""

    def __init__(self, model, processor, max_new_tokens: int = 128, min_new_tokens: int = 0,
                 family: type[JudgeFamily] | None = None, decode_cache: str = "dynamic"):
        if decode_cache not in DECODE_CACHES:
            raise ValueError(f"judge.decode_cache={decode_cache!r}; expected one of {DECODE_CACHES}")
        self.decode_cache = decode_cache
        self.model = model
        self.processor = processor
        self.family = family or family_of(model)
        self.tokenizer = processor.tokenizer
        self.tokenizer.padding_side = "left"
        self.max_new_tokens = max_new_tokens
        self.min_new_tokens = min_new_tokens
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        self.yes_id, self.no_id = (self._single_token(w) for w in ("Yes", "No"))
        self.prefix_text = self.split_prompt("?")[0]
        # prefix tokens besides the video's own (the placeholder expands to the video tokens)
        prefix_ids = self.tokenizer.encode(self.prefix_text, add_special_tokens=False)
        self.prefix_tokens = len(prefix_ids) - 1
        # masked padding inside generate's rows holds a token of every prompt (<|im_start|>), not the pad/EOS id:
        # a checkpoint's repetition_penalty then sees exactly the tokens of the question's own prompt
        self.filler_id = prefix_ids[0]

    def _single_token(self, word: str) -> int:
        ids = self.tokenizer.encode(word, add_special_tokens=False)
        if len(ids) != 1:
            raise ValueError(f"fast mode needs {word!r} to be one token of the judge's tokenizer; it is {ids}")
        return ids[0]

    @property
    def device(self) -> torch.device:
        return self.model.device

    def chat_text(self, question: str) -> str:
        """The official prompt for one question: one user turn [video, question text], no system message (the
        chat template adds its default system prompt), then the assistant header."""
        messages = [{"role": "user", "content": [{"type": "video", "video": "<video>"}, {"type": "text", "text": question_text(question)}]}]
        return self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def split_prompt(self, question: str) -> tuple[str, str]:
        """(prefix through the video's end marker, question suffix); the prefix is the same for every question."""
        text = self.chat_text(question)
        marker = self.family.video_end_marker(self.processor)
        if text.count(self.processor.video_token) != 1 or marker not in text:
            raise ValueError(f"the judge's chat template must place one {self.processor.video_token} then {marker}: {text!r}")
        cut = text.index(marker) + len(marker)
        return text[:cut], text[cut:]

    def suffix_ids(self, question: str) -> list[int]:
        return self.tokenizer.encode(self.split_prompt(question)[1], add_special_tokens=False)

    def encode_prefixes(self, videos: Sequence[JudgeVideo]):
        """A batch of videos: prefix token rows (left padded) and video tensors."""
        return self.family.encode(self.processor, [self.prefix_text] * len(videos), videos)

    def prefix_length(self, plan: VideoPlan) -> int:
        """Tokens of a prefix whose video is read by `plan` (before decoding it)."""
        return self.family.prefix_length(self, plan)

    def full_inputs(self, video: JudgeVideo, question: str):
        """Processor inputs for one question, the way the official procedure builds them (tests, benchmark)."""
        return self.processor(
            text=[self.chat_text(question)],
            videos=[video.frames],
            video_metadata=[video.metadata],
            do_sample_frames=False,
            padding=True,
            return_tensors="pt",
        ).to(self.device)

    def _prefix_positions(self, enc) -> PrefixPositions:
        return self.family.prefix_positions(self.model, enc, self.pad_id)

    def _model_inputs(self, enc) -> dict:
        """The processor's video tensors for the model (per-token keys are rebuilt by each mode)."""
        return {k: v for k, v in enc.items() if k not in ("input_ids", "attention_mask", "mm_token_type_ids")}

    @torch.inference_mode()
    def fast(self, items: Sequence[SampleItem]) -> list[list[float]]:
        """P(yes) per question: one masked forward per sample over its prefix and all its questions."""
        if "flash" in str(self.model.config._attn_implementation):
            raise ValueError("judge fast mode needs a custom 4-D attention mask: use attn_implementation sdpa or eager")
        return [self._fast_one(item) for item in items]

    def _fast_one(self, item: SampleItem) -> list[float]:
        enc = self.encode_prefixes([item.video])
        prefix = self._prefix_positions(enc)
        n_prefix = enc["input_ids"].shape[1]
        questions = [self.suffix_ids(q) for q in item.questions]
        ids = torch.cat([enc["input_ids"][0], *(torch.tensor(q) for q in questions)])
        block = torch.cat([torch.full((n_prefix,), -1), *(torch.full((len(q),), j) for j, q in enumerate(questions))])
        text_positions = torch.cat([prefix.following[0] + torch.arange(len(q)) for q in questions])
        positions = torch.cat([prefix.ids[..., 0, :], text_positions.expand(*prefix.ids.shape[:-2], -1)], dim=-1)
        causal = torch.ones(len(ids), len(ids), dtype=torch.bool).tril()
        sees = causal & ((block[None, :] == -1) | (block[None, :] == block[:, None]))  # the prefix, or its own question
        last = n_prefix + torch.tensor([len(q) for q in questions]).cumsum(0) - 1
        logits = self.model(
            input_ids=ids[None].to(self.device),
            attention_mask=sees[None, None].to(self.device),
            position_ids=positions[..., None, :].to(self.device),
            use_cache=False,
            logits_to_keep=last.to(self.device),
            **self._model_inputs(enc.to(self.device)),
        ).logits[0].float()
        return torch.softmax(logits[:, [self.yes_id, self.no_id]], dim=-1)[:, 0].tolist()

    def parity(self, items: Sequence[SampleItem]) -> list[list[str]]:
        """Free-text replies by greedy generation: prefixes prefilled once, then one `generate` per question round
        (all samples' j-th question) from that cache. A sample with fewer questions repeats its last one in the
        later rounds; that reply is dropped. Rows are [prefix (left padded) | question (left padded)]: the padding
        between them is masked and the explicit 3-D positions skip it."""
        return [replies for replies, _ in self._generate_rounds(items, with_p_yes=False)]

    def both(self, items: Sequence[SampleItem]) -> list[tuple[list[str], list[float]]]:
        """(parity replies, fast P(yes)) per sample from one pass over the prefix: P(yes) is read from the raw
        logits of each round's first generated token, which are the next-token logits after the question's own
        prompt, i.e. what `fast` computes (equal within float rounding)."""
        return self._generate_rounds(items, with_p_yes=True)

    @torch.inference_mode()
    def _generate_rounds(self, items: Sequence[SampleItem], with_p_yes: bool) -> list[tuple[list[str], list[float]]]:
        enc = self.encode_prefixes([it.video for it in items])
        prefix = self._prefix_positions(enc)
        enc = enc.to(self.device)
        suffixes_per_round = [[self.suffix_ids(it.questions[min(j, len(it.questions) - 1)]) for it in items]
                              for j in range(max(len(it.questions) for it in items))]
        n_prefix = enc["input_ids"].shape[1]
        given = {"position_ids": prefix.ids.to(self.device)} if prefix.in_prefill else {}
        given |= self._new_cache(n_prefix + max(len(s) for r in suffixes_per_round for s in r) + self.max_new_tokens)
        cache = getattr(self.model(**enc, use_cache=True, logits_to_keep=1, **given), kv_cache_field())
        replies: list[list[str]] = [[] for _ in items]
        p_yes: list[list[float]] = [[] for _ in items]
        for j, suffixes in enumerate(suffixes_per_round):
            width = max(len(s) for s in suffixes)
            suffix_ids = torch.full((len(items), width), self.pad_id, dtype=torch.long)
            suffix_mask = torch.zeros((len(items), width), dtype=torch.long)
            suffix_positions = torch.zeros((*prefix.ids.shape[:-2], len(items), width), dtype=torch.long)
            for r, s in enumerate(suffixes):
                suffix_ids[r, width - len(s):] = torch.tensor(s)
                suffix_mask[r, width - len(s):] = 1
                suffix_positions[..., r, width - len(s):] = prefix.following[r] + torch.arange(len(s))
            attention_mask = torch.cat([enc["attention_mask"].cpu(), suffix_mask], dim=1)
            input_ids = torch.cat([enc["input_ids"].cpu(), suffix_ids], dim=1).masked_fill(attention_mask == 0, self.filler_id)
            generated = self.model.generate(
                input_ids=input_ids.to(self.device),
                attention_mask=attention_mask.to(self.device),
                position_ids=torch.cat([prefix.ids, suffix_positions], dim=-1).to(self.device),
                **{kv_cache_field(): cache},
                do_sample=False,
                max_new_tokens=self.max_new_tokens,
                min_new_tokens=self.min_new_tokens or None,
                output_logits=with_p_yes,
                return_dict_in_generate=True,
            )
            rewind_cache(cache, n_prefix)  # back to the shared prefix for the next round
            texts = self.tokenizer.batch_decode(generated.sequences[:, input_ids.shape[1]:], skip_special_tokens=True)
            first = (torch.softmax(generated.logits[0].float()[:, [self.yes_id, self.no_id]], dim=-1)[:, 0].tolist()
                     if with_p_yes else [float("nan")] * len(items))
            for r, text in enumerate(texts):
                if j < len(items[r].questions):
                    replies[r].append(text)
                    p_yes[r].append(first[r])
        return list(zip(replies, p_yes, strict=True))

    def _new_cache(self, tokens: int) -> dict:
        """The prefill's cache kwarg: none (the model makes a DynamicCache) or, with `decode_cache=static`, a
        StaticCache of `tokens` rounded up to STATIC_CACHE_STEP. On CUDA, `generate` then decodes with its
        compiled forward (torch.compile "reduce-overhead": CUDA graphs), which removes the per-step launch and
        Python cost; the math is the same (greedy replies equal, tests)."""
        if self.decode_cache == "dynamic":
            return {}
        from transformers import StaticCache

        size = -(-tokens // STATIC_CACHE_STEP) * STATIC_CACHE_STEP
        return {kv_cache_field(): StaticCache(config=self.model.config, max_cache_len=size)}


def rewind_cache(cache, length: int) -> None:
    """Drop every cached token after the first `length`. DynamicCache (and StaticCache from transformers 5.2x)
    crop; transformers 5.17's static layers cannot, so their fill counter (`cumulative_length`, the position the
    next token is written at) is set back; the entries after it are masked and then overwritten."""
    if all(getattr(layer, "is_croppable", True) for layer in cache.layers):
        cache.crop(length - int(cache.get_seq_length()))
        return
    for layer in cache.layers:
        layer.cumulative_length.fill_(length)


@functools.cache
def kv_cache_field() -> str:
    """The name transformers gives the key/value cache in model outputs and `generate` kwargs: `cache` since
    5.2x, `past_key_values` before (the project accepts transformers >= 5.0)."""
    from transformers.modeling_outputs import CausalLMOutputWithPast

    names = {field.name for field in dataclasses.fields(CausalLMOutputWithPast)}
    return "cache" if "cache" in names else "past_key_values"


def tiny_judge_folder(name: str = "tiny-qwen2.5-vl-judge") -> Path:
    """Where a tiny judge is built (a user cache folder; rebuilt when absent)."""
    root = Path(os.environ.get("OMITI2V_CACHE", Path.home() / ".cache" / "omiti2v"))
    return root / name
