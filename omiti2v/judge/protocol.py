"""The paper's VQA protocol as data: the exact question text and the answer-parsing rule (REFERENCE §4)."""

from __future__ import annotations

import string

INSTRUCTION = (
    "Please watch the video carefully and answer the question based solely on what you observe. "
    "Reply with 'yes' or 'no' followed by a brief explanation of your reasoning."
)


def question_text(question: str) -> str:
    """The user turn's text, exactly as the paper words it; the judge never sees the generation prompt."""
    return f"Question: {question}\n\n{INSTRUCTION}"


def parse_answer(text: str | None) -> str:
    """'yes' | 'no' | 'unknown' from a free-text reply, by the paper's rule.

    1. the text before the first comma starts with "yes" / "no";
    2. else "yes" occurs and "no" does not (or the converse), as substrings, like the reference;
    3. else the first five words (punctuation stripped) contain "yes", then "no";
    4. else unknown.
    The substring steps are literal on purpose: "Not sure" parses as "no" and "I cannot tell" as "no".
    """
    text = (text or "").lower().strip()
    head = text.split(",", 1)[0].strip()
    for answer in ("yes", "no"):
        if head.startswith(answer):
            return answer
    has_yes, has_no = "yes" in text, "no" in text
    if has_yes and not has_no:
        return "yes"
    if has_no and not has_yes:
        return "no"
    first_words = [w.strip(string.punctuation) for w in text.split()[:5]]
    for answer in ("yes", "no"):
        if answer in first_words:
            return answer
    return "unknown"
