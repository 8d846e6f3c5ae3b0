"""judge.mode=official: the paper's judge procedure, one `generate` per question, whatever else is being judged.

The official qwen.py (AlignVid repository, evaluation/vqa_based/qwen.py) asks each question on its own: it builds
the chat prompt for [video, question], runs the processor on that one prompt and video, calls
`model.generate(**inputs, max_new_tokens=128, do_sample=False)` (the temperature and top_p it also passes are
inert under greedy decoding) and decodes the new tokens with special tokens skipped. This mode makes exactly
those calls, with transformers' own vision attention, so a reply never depends on the batch planner, the free
memory or the other samples. Two things are shared, neither of which changes a bit of any reply:

- the next samples' videos are decoded and each question's processor inputs built by background threads while
  the GPU generates (the same calls, on another thread, each thread with its own processor copy: a fast
  tokenizer must not be used by two threads at once);
- a video's vision-tower output is computed once and handed to the generate of each of its questions: the tower
  is a deterministic function of the pixels, and the memo hands it back only for pixels equal to the ones it
  was computed from (tests compare replies and logits with recomputing it; the judge benchmark checks it at
  Qwen2.5-VL-32B shapes).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import queue
from collections.abc import Sequence

import torch

from .video import JudgeVideo
from .vision_attention import (
    VISION_ATTENTION_CLASSES,
    install_batched_window_attention,
    remove_batched_window_attention,
)


class ProcessorCopies:
    """Copies of a processor, each lent to one thread at a time (a fast tokenizer must never serve two threads
    at once; the judge's own processor stays with the main thread, which decodes the replies). Made on demand,
    kept for the next borrower."""

    def __init__(self, processor):
        self.processor = processor
        self.free: queue.SimpleQueue = queue.SimpleQueue()

    @contextlib.contextmanager
    def borrowed(self):
        try:
            processor = self.free.get_nowait()
        except queue.Empty:
            processor = copy.deepcopy(self.processor)
        try:
            yield processor
        finally:
            self.free.put(processor)


def question_inputs(judge, video: JudgeVideo, questions: Sequence[str], processor=None) -> list:
    """Each question's processor inputs (CPU), as qwen.py builds them: one prompt, one video, one call."""
    processor = processor or judge.processor
    return [processor(text=[judge.chat_text(q)], videos=[video.frames], video_metadata=[video.metadata],
                      do_sample_frames=False, padding=True, return_tensors="pt") for q in questions]


@contextlib.contextmanager
def stock_vision_attention(model):
    """transformers' own vision attention for the duration (the harness's batched windows round differently in
    bf16); put back afterwards where it was installed."""
    installed = any(type(m).__name__ in VISION_ATTENTION_CLASSES and "forward" in m.__dict__ for m in model.modules())
    remove_batched_window_attention(model)
    try:
        yield
    finally:
        if installed:
            install_batched_window_attention(model)


def _same(a, b) -> bool:
    if torch.is_tensor(a) or torch.is_tensor(b):
        return torch.is_tensor(a) and torch.is_tensor(b) and a.shape == b.shape and a.dtype == b.dtype \
            and a.device == b.device and bool(torch.equal(a, b))
    return a == b


@contextlib.contextmanager
def shared_video_features(model):
    """Within the block, the model's `get_video_features` (what both transformers' forward and its generate call
    to run the vision tower) computes once per distinct input and hands the same output back for equal pixels,
    grid and options. An instance attribute on the model's base model, removed on exit; a family without that
    method is left alone."""
    base = getattr(model, "model", None)
    compute = getattr(base, "get_video_features", None)
    if compute is None or "get_video_features" in vars(base):
        yield
        return
    kept: list = []  # [(args, kwargs, output)]: the last input and its output

    @functools.wraps(compute)  # generate() reads the signature to find the pixel inputs
    def once(*args, **kwargs):
        if kept and len(kept[0][0]) == len(args) and kept[0][1].keys() == kwargs.keys() \
                and all(_same(a, b) for a, b in zip(kept[0][0], args, strict=True)) \
                and all(_same(kept[0][1][k], v) for k, v in kwargs.items()):
            return kept[0][2]
        kept[:] = [(args, kwargs, compute(*args, **kwargs))]
        return kept[0][2]

    base.get_video_features = once
    try:
        yield
    finally:
        del base.get_video_features
        kept.clear()


def official_replies(judge, inputs: Sequence, max_new_tokens: int, min_new_tokens: int = 0) -> list:
    """One generate per question's `inputs` (question_inputs), one video: the replies, or for a question that ran
    out of GPU memory alone its RuntimeError (the others go on)."""
    options = {"do_sample": False, "max_new_tokens": max_new_tokens}
    if min_new_tokens:
        options["min_new_tokens"] = min_new_tokens
    replies: list = []
    with stock_vision_attention(judge.model), shared_video_features(judge.model):
        for one in inputs:
            one = one.to(judge.device)
            try:
                out = judge.model.generate(**one, **options)
            except torch.OutOfMemoryError as exc:
                replies.append(RuntimeError(f"CUDA out of memory on this question: {str(exc).splitlines()[0]}"))
                torch.cuda.empty_cache()
                continue
            new = out[0, one["input_ids"].shape[1]:]
            replies.append(judge.tokenizer.decode(new, skip_special_tokens=True, clean_up_tokenization_spaces=False))
    return replies
