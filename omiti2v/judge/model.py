"""Qwen2.5-VL as a yes/no judge: loading, prompt building, and the two answering modes.

Both modes preprocess each video once (one processor call per batch of samples) and share it between the
questions of its sample. The prompt up to the end of the video (system turn, user header, video) is identical
for every question of a sample, so it runs once per sample (vision tower and ~3.7k LLM tokens); its KV cache is
copied to one row per question and only the question suffixes run, with the M-RoPE positions they have in the
question's own prompt.

- parity: the paper's procedure (greedy `generate`, free text, the parsing rule), continued from the shared
  prefix cache: the computation of generating each question alone (in float32 the tests find the replies
  token-identical).
- fast: one suffix forward per question; P(yes) comes from the next-token logits of "Yes" and "No" (no leading
  space: the reply starts right after the assistant header).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import SetupError
from .protocol import question_text
from .video import JudgeVideo


class JudgeWeightsError(SetupError, RuntimeError):
    """The judge checkpoint is neither a local folder nor in the local Hugging Face cache."""


DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32, "auto": "auto"}


def load_judge_model(model_id: str, dtype: str = "bfloat16", device_map: str | None = "auto", device: str = "cpu",
                     attn_implementation: str | None = "sdpa"):
    """(model, processor) from a hub id or local folder; one clear error when the weights are not available."""
    from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration

    if dtype not in DTYPES:
        raise ValueError(f"judge.dtype: {dtype!r} is not one of {sorted(DTYPES)}")
    kwargs = {"dtype": DTYPES[dtype]}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    if device_map:
        kwargs["device_map"] = device_map
    try:
        processor = AutoProcessor.from_pretrained(model_id)
        model = Qwen2_5_VLForConditionalGeneration.from_pretrained(model_id, **kwargs)
    except OSError as exc:
        where = "local folder" if Path(model_id).exists() else "hub id"
        raise JudgeWeightsError(
            f"judge.model={model_id!r} ({where}): the Qwen2.5-VL weights are not available here "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}). Download them on a machine "
            f"with network access, e.g. `hf download {model_id if where == 'hub id' else 'Qwen/Qwen2.5-VL-32B-Instruct'} "
            f"--local-dir DIR`, then set judge.model=DIR (or point HF_HOME / HF_HUB_CACHE at a cache holding them)."
        ) from exc
    if not device_map:
        model.to(device)
    return model.eval(), processor


@dataclass
class SampleItem:
    """One sample to judge: its processed video and its question texts."""

    video: JudgeVideo
    questions: Sequence[str]


class VqaJudge:
    """Answers yes/no questions about videos with a Qwen2.5-VL model and its processor."""

    def __init__(self, model, processor, max_new_tokens: int = 128, min_new_tokens: int = 0):
        self.model = model
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.tokenizer.padding_side = "left"
        self.max_new_tokens = max_new_tokens
        self.min_new_tokens = min_new_tokens
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        self.yes_id, self.no_id = (self._single_token(w) for w in ("Yes", "No"))

    def _single_token(self, word: str) -> int:
        ids = self.tokenizer.encode(word, add_special_tokens=False)
        if len(ids) != 1:
            raise ValueError(f"fast mode needs {word!r} to be one token of the judge's tokenizer; it is {ids}")
        return ids[0]

    @property
    def device(self) -> torch.device:
        return self.model.device

    def chat_text(self, question: str) -> str:
        """The full prompt for one question: the chat template around [video, question text]."""
        messages = [{"role": "user", "content": [{"type": "video", "video": "<video>"}, {"type": "text", "text": question_text(question)}]}]
        return self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def split_prompt(self, question: str) -> tuple[str, str]:
        """(prefix through the video's end marker, question suffix); the prefix is the same for every question."""
        text = self.chat_text(question)
        marker = "<|vision_end|>"
        if text.count(self.processor.video_token) != 1 or marker not in text:
            raise ValueError(f"the judge's chat template must place one {self.processor.video_token} then {marker}: {text!r}")
        cut = text.index(marker) + len(marker)
        return text[:cut], text[cut:]

    def encode_prefixes(self, videos: Sequence[JudgeVideo], prefix: str):
        """One processor call for a batch of videos: prefix token rows (left padded) and video tensors."""
        return self.processor(
            text=[prefix] * len(videos),
            videos=[v.frames for v in videos],
            video_metadata=[v.metadata for v in videos],
            do_sample_frames=False,
            padding=True,
            return_tensors="pt",
        )

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

    def _suffix_ids(self, items: Sequence[SampleItem]) -> tuple[str, list[list[list[int]]]]:
        prefix = None
        suffixes = []
        for item in items:
            ids = []
            for q in item.questions:
                p, s = self.split_prompt(q)
                prefix = prefix or p
                ids.append(self.tokenizer.encode(s, add_special_tokens=False))
            suffixes.append(ids)
        return prefix, suffixes

    def _question_rows(self, enc, suffixes: list[list[list[int]]]) -> tuple[dict, list[int]]:
        """Per-token tensors of the full (prefix + question) rows, left padded, and the sample of each row.

        Built from the once-processed prefixes: every per-token key the processor returned (input ids,
        attention mask, and in newer transformers the modality ids) is the prefix's unpadded values followed
        by the question's tokens.
        """
        token_keys = [k for k, v in enc.items() if torch.is_tensor(v) and v.shape[:2] == enc["input_ids"].shape]
        rows, samples = [], []
        for s, qs in enumerate(suffixes):
            keep = enc["attention_mask"][s].bool()
            for ids in qs:
                row = {}
                for k in token_keys:
                    tail = torch.tensor(ids) if k == "input_ids" else torch.full((len(ids),), int(k == "attention_mask"))
                    row[k] = torch.cat([enc[k][s][keep].cpu(), tail.to(enc[k].dtype)])
                rows.append(row)
                samples.append(s)
        width = max(len(r["input_ids"]) for r in rows)
        inputs = {}
        for k in token_keys:
            pad = self.pad_id if k == "input_ids" else 0
            inputs[k] = torch.stack([torch.nn.functional.pad(r[k], (width - len(r[k]), 0), value=pad) for r in rows])
        inputs["video_grid_thw"] = enc["video_grid_thw"][samples]
        if "second_per_grid_ts" in enc:
            ts = enc["second_per_grid_ts"]
            inputs["second_per_grid_ts"] = ts[samples] if torch.is_tensor(ts) else [ts[s] for s in samples]
        return inputs, samples

    def _rope_positions(self, rows: dict) -> torch.Tensor:
        """(3, rows, width) M-RoPE positions of full rows, from the model's own rule (it changes across
        transformers versions, so it is asked, not re-implemented)."""
        get_rope_index = self.model.model.get_rope_index
        accepted = inspect.signature(get_rope_index).parameters
        kwargs = {k: v for k, v in rows.items() if k in accepted and k != "input_ids"}
        positions, _ = get_rope_index(rows["input_ids"], **kwargs)
        return positions

    def _shared_prefix(self, items: Sequence[SampleItem]):
        """Run each sample's video prefix once and lay out one continuation row per (sample, question).

        The prefix forward (vision tower and the prompt through the video) runs on the batch of samples; its
        KV cache is then copied to one row per question. Each row is the sample's prefix (as padded in the
        prefix batch) followed by its question suffix, left padded to the longest suffix, so rows may hold
        padding between prefix and suffix. M-RoPE positions of the real tokens come from the model's own rule
        on the unshared full rows, so every token sits where it would in the question's own prompt.
        Returns (cache, row input ids, row attention mask, row positions (3, rows, length), suffixes).
        """
        prefix, suffixes = self._suffix_ids(items)
        enc = self.encode_prefixes([it.video for it in items], prefix)
        full_rows, samples = self._question_rows(enc, suffixes)
        full_positions = self._rope_positions(full_rows)

        lengths = [len(ids) for qs in suffixes for ids in qs]
        width = max(lengths)
        suffix_ids = torch.full((len(lengths), width), self.pad_id, dtype=torch.long)
        suffix_mask = torch.zeros((len(lengths), width), dtype=torch.long)
        for r, ids in enumerate(ids for qs in suffixes for ids in qs):
            suffix_ids[r, width - len(ids):] = torch.tensor(ids)
            suffix_mask[r, width - len(ids):] = 1
        sample_of_row = torch.tensor(samples)
        input_ids = torch.cat([enc["input_ids"][sample_of_row], suffix_ids], dim=1)
        attention_mask = torch.cat([enc["attention_mask"][sample_of_row], suffix_mask], dim=1)
        positions = torch.ones((3, *input_ids.shape), dtype=torch.long)
        # both layouts hold each row's real tokens in the same order, only the padding differs
        positions[:, attention_mask.bool()] = full_positions[:, full_rows["attention_mask"].bool()]

        cache = self.model(**enc.to(self.device), use_cache=True, logits_to_keep=1).past_key_values
        cache.batch_select_indices(sample_of_row.to(self.device))
        return cache, input_ids.to(self.device), attention_mask.to(self.device), positions.to(self.device), suffixes

    @torch.inference_mode()
    def fast(self, items: Sequence[SampleItem]) -> list[list[float]]:
        """P(yes) per question: one prefix forward per sample, one suffix forward per question row."""
        cache, input_ids, attention_mask, positions, suffixes = self._shared_prefix(items)
        start = cache.get_seq_length()
        logits = self.model(
            input_ids=input_ids[:, start:],
            attention_mask=attention_mask,
            position_ids=positions[:, :, start:],
            past_key_values=cache,
            use_cache=True,
            logits_to_keep=1,
        ).logits[:, -1].float()
        p_yes = torch.softmax(logits[:, [self.yes_id, self.no_id]], dim=-1)[:, 0].tolist()
        return _regroup(p_yes, suffixes)

    @torch.inference_mode()
    def parity(self, items: Sequence[SampleItem]) -> list[list[str]]:
        """Free-text replies by greedy generation, one row per (sample, question), continuing from the shared
        video prefix: `generate` gets the full rows, the prefilled cache (it runs only the uncached suffix) and
        explicit 3D positions (it extends them by one per new token, as text positions grow)."""
        cache, input_ids, attention_mask, positions, suffixes = self._shared_prefix(items)
        generated = self.model.generate(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=positions,
            past_key_values=cache,
            do_sample=False,
            max_new_tokens=self.max_new_tokens,
            min_new_tokens=self.min_new_tokens or None,
        )
        width = input_ids.shape[1]
        return _regroup(self.tokenizer.batch_decode(generated[:, width:], skip_special_tokens=True), suffixes)


def _regroup(flat: list, suffixes: list[list]) -> list[list]:
    """Split a flat per-row list back into one list per sample."""
    out, i = [], 0
    for qs in suffixes:
        out.append(flat[i:i + len(qs)])
        i += len(qs)
    return out


def default_device(device: str) -> str:
    """'auto' -> cuda when available, else cpu; anything else unchanged."""
    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def tiny_judge_folder() -> Path:
    """Where the smoke run's tiny judge is built (a user cache folder; rebuilt when absent)."""
    root = Path(os.environ.get("OMITI2V_CACHE", Path.home() / ".cache" / "omiti2v"))
    return root / "tiny-qwen2.5-vl-judge"
