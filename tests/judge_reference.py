"""The unshared reference the judge's batched modes must equal: each question asked alone, full prompt with its
own video, one forward (fast) or one greedy generate (parity)."""

from __future__ import annotations

import torch

from omiti2v.judge import VqaJudge


def alone_p_yes(judge: VqaJudge, video, question: str) -> float:
    """P(yes) of the next token after the full prompt, over the yes/no pair."""
    logits = judge.model(**judge.full_inputs(video, question)).logits[0, -1]
    return torch.softmax(logits[[judge.yes_id, judge.no_id]].double(), dim=-1)[0].item()


def alone_reply(judge: VqaJudge, video, question: str) -> str:
    """The greedy reply to the full prompt, special tokens dropped."""
    inputs = judge.full_inputs(video, question)
    out = judge.model.generate(**inputs, do_sample=False, max_new_tokens=judge.max_new_tokens)
    return judge.tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
