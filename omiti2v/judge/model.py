"""A VLM as a yes/no judge: loading, prompt building, and the answering modes (any family of families.py).

official (official.py): one generate() per question, as the paper's qwen.py; what follows is about the two
modes that share a sample's prefix between its questions.

The prompt up to the end of the video (system turn, user header, video) is the same for every question of a
sample, so it runs once per sample (vision tower and 4-6k LLM tokens) and is never copied per question. Every
question token gets the position it has in that question's own prompt, by the family's rule: Qwen's M-RoPE text
after the video continues from the prefix's largest position + 1 in all three axes; InternVL's 1-D positions
continue at the prefix's length.

The batch's prefixes (one row per sample) are prefilled once into a DynamicCache. Behind each prefix the
sample's questions then sit side by side in the same row (side_by_side.py): one chunk holds every question's
prompt suffix, and a 4-D attention mask lets each token see the prefix and its own question only.
- fast: P(yes) from the chunk's next-token logits of "Yes" and "No" at each question's last token (no leading
  space: the reply starts after the assistant header). One forward after the prefill.
- parity: the paper's procedure (greedy decoding, free text, the parsing rule): from the chunk on, every question
  gets one new token per step, under the processors generate() would apply from the checkpoint's
  generation_config (repetition penalty, min_new_tokens; any other greedy-changing field is refused). In
  float32 the replies are token-identical to generate() on each question's own prompt (tests).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from ..compat.transformers import attention_implementation, kv_cache_field
from ..dtypes import torch_dtype
from ..errors import SetupError
from ..paper_settings import paper_judge
from .families import JudgeFamily, PrefixPositions, family_of
from .official import ProcessorCopies, official_replies, question_inputs
from .options import JUDGE_DTYPES
from .protocol import question_text
from .side_by_side import QuestionColumns
from .video import PAPER_MAX_NEW_TOKENS, JudgeVideo, VideoPlan
from .vision_attention import install_batched_window_attention


class JudgeWeightsError(SetupError, RuntimeError):
    """The judge checkpoint is neither a local folder nor in the local Hugging Face cache."""




def load_judge_model(model_id: str, dtype: str = "bfloat16", device_map: str | None = "auto", device: str = "cpu",
                     attn_implementation: str | None = "sdpa", model_class: str = "Qwen2_5_VLForConditionalGeneration"):
    """(model, processor) from a hub id or local folder; one clear error when the weights are not available.
    `model_class`: the transformers class of the judge's family (omiti2v/judge/families.py)."""
    import transformers
    from transformers import AutoProcessor

    if dtype not in JUDGE_DTYPES:
        raise ValueError(f"judge.dtype: {dtype!r} is not one of {sorted(JUDGE_DTYPES)}")
    kwargs = {"dtype": "auto" if dtype == "auto" else torch_dtype(dtype)}
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
            f"with network access, e.g. `hf download {model_id if where == 'hub id' else paper_judge()['model']} "
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

    def __init__(self, model, processor, max_new_tokens: int = PAPER_MAX_NEW_TOKENS, min_new_tokens: int = 0,
                 family: type[JudgeFamily] | None = None):
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
        # padding holds a token of every prompt (<|im_start|>), not the pad/EOS id: the repetition penalty then
        # sees exactly the tokens of the question's own prompt
        self.filler_id = prefix_ids[0]
        self.processor_copies = ProcessorCopies(processor)  # for threads that prepare official-mode inputs

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

    def official(self, items: Sequence[SampleItem]) -> list[list[str | Exception]]:
        """Free-text replies, one generate() per question exactly as the paper's qwen.py (official.py): each
        reply is independent of the other questions and samples."""
        return [official_replies(self, question_inputs(self, it.video, it.questions), self.max_new_tokens,
                                 self.min_new_tokens) for it in items]

    @torch.inference_mode()
    def fast(self, items: Sequence[SampleItem]) -> list[list[float]]:
        """P(yes) per question: the next-token logits after each question's prompt, all questions of a sample
        side by side behind its cached prefix."""
        return [p_yes for _, p_yes in self._answer(items, replies=False)]

    def parity(self, items: Sequence[SampleItem]) -> list[list[str]]:
        """Free-text replies by greedy decoding (the checkpoint's generation_config processors that generate()
        would apply: repetition_penalty, min_new_tokens), every question of a sample decoded side by side."""
        return [replies for replies, _ in self._answer(items, replies=True)]

    def both(self, items: Sequence[SampleItem]) -> list[tuple[list[str], list[float]]]:
        """(parity replies, fast P(yes)) per sample from one pass: P(yes) is read from the raw logits of each
        question's first reply token, which are what `fast` computes."""
        return self._answer(items, replies=True)

    @torch.inference_mode()
    def _answer(self, items: Sequence[SampleItem], replies: bool) -> list[tuple[list[str], list[float]]]:
        if "flash" in attention_implementation(self.model.config):
            raise ValueError("the judge needs a custom 4-D attention mask: use attn_implementation sdpa or eager")
        unsupported = unsupported_decoding(self.model.generation_config)
        if unsupported:  # official mode's generate() applies them, as qwen.py's did
            raise ValueError(f"the judge's generation_config sets {', '.join(unsupported)}: parity and fast decode "
                             "greedily with repetition_penalty and min_new_tokens only; unset them or use "
                             "judge.mode=official")
        enc = self.encode_prefixes([it.video for it in items])
        prefix = self._prefix_positions(enc)
        enc = enc.to(self.device)
        given = {"position_ids": prefix.ids.to(self.device)} if prefix.in_prefill else {}
        cache = getattr(self.model(**enc, use_cache=True, logits_to_keep=1, **given), kv_cache_field())
        slots = max(len(it.questions) for it in items)
        columns = QuestionColumns.after_prefix(enc["attention_mask"], prefix.following, slots)
        lead = prefix.ids.shape[:-2]  # (3,) for M-RoPE, () for 1-D positions
        suffixes = [[self.suffix_ids(q) for q in it.questions] for it in items]
        ids, positions, ends = columns.question_chunk(suffixes, self.filler_id)

        def forward(ids, positions, keep):
            return self.model(input_ids=ids.to(self.device), attention_mask=columns.mask(ids.shape[1]),
                              position_ids=positions.expand(*lead, *positions.shape).to(self.device),
                              **{kv_cache_field(): cache}, use_cache=True, logits_to_keep=keep).logits.float()

        logits = forward(ids, positions, ends.to(self.device))  # (rows, slots, vocabulary)
        p_yes = torch.softmax(logits[..., [self.yes_id, self.no_id]], dim=-1)[..., 0].tolist()
        texts = [[] for _ in items]
        if replies:
            prompts = columns.prompt_tokens(torch.cat([enc["input_ids"], ids.to(self.device)], dim=1), self.filler_id)
            out = self._greedy(logits, prompts, columns.asked.to(self.device),
                               lambda tokens: forward(tokens, columns.step(), slots))
            texts = [[self.tokenizer.decode(out[r, j], skip_special_tokens=True) for j in range(len(it.questions))]
                     for r, it in enumerate(items)]
        return [(texts[r], p_yes[r][: len(it.questions)]) for r, it in enumerate(items)]

    def _greedy(self, logits: torch.Tensor, prompts: torch.Tensor, asked: torch.Tensor, step) -> torch.Tensor:
        """(rows, slots, new tokens) greedy replies of every slot at once, from the first reply token's `logits`
        (rows, slots, vocabulary); `prompts` (rows, slots, tokens): each question's prompt tokens, for the
        repetition penalty; `step(tokens)`: the next logits after one new token per slot. Stopped slots are
        padded, as generate() pads finished rows."""
        from transformers import RepetitionPenaltyLogitsProcessor

        config = self.model.generation_config
        eos = config.eos_token_id if config.eos_token_id is not None else self.tokenizer.eos_token_id
        eos = torch.tensor([eos] if isinstance(eos, int) else list(eos), device=self.device)
        penalize = (RepetitionPenaltyLogitsProcessor(config.repetition_penalty)
                    if config.repetition_penalty not in (None, 1.0) else None)
        min_new = self.min_new_tokens or config.min_new_tokens or 0
        rows, slots = logits.shape[:2]
        history = prompts.flatten(0, 1)
        stopped = ~asked
        generated = []
        for new in range(self.max_new_tokens):
            scores = logits.flatten(0, 1)
            if penalize is not None:
                scores = penalize(history, scores)
            if new < min_new:
                scores[:, eos] = -torch.inf
            tokens = scores.argmax(-1).view(rows, slots)
            generated.append(torch.where(stopped, self.pad_id, tokens))
            stopped |= torch.isin(tokens, eos)
            if bool(stopped.all()) or new + 1 == self.max_new_tokens:
                break
            history = torch.cat([history, tokens.flatten()[:, None]], dim=-1)
            logits = step(tokens)
        return torch.stack(generated, dim=-1).cpu()


# generation_config fields generate() would turn into greedy-changing logits processors or another search, at the
# values that leave greedy decoding alone
NEUTRAL_DECODING = {"num_beams": (None, 1), "num_beam_groups": (None, 1), "penalty_alpha": (None, 0.0),
                    "no_repeat_ngram_size": (None, 0), "bad_words_ids": (None, []), "sequence_bias": (None, {}),
                    "suppress_tokens": (None, []), "begin_suppress_tokens": (None, []), "forced_bos_token_id": (None,),
                    "forced_eos_token_id": (None,), "exponential_decay_length_penalty": (None,),
                    "guidance_scale": (None, 1.0), "min_length": (None, 0), "encoder_repetition_penalty": (None, 1.0),
                    "dola_layers": (None,), "prompt_lookup_num_tokens": (None,)}


def unsupported_decoding(generation_config) -> list[str]:
    """The fields of `generation_config` that would make generate()'s greedy replies differ from the judge's."""
    return [f"{k}={getattr(generation_config, k)!r}" for k, neutral in NEUTRAL_DECODING.items()
            if getattr(generation_config, k, None) not in neutral]


def tiny_judge_folder(name: str = "tiny-qwen2.5-vl-judge") -> Path:
    """Where a tiny judge is built (a user cache folder; rebuilt when absent)."""
    root = Path(os.environ.get("OMITI2V_CACHE", Path.home() / ".cache" / "omiti2v"))
    return root / name
