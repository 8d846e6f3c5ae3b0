"""The paper's VQA protocol as data: the exact question text and the official answer-parsing rule (arXiv 2512.01334;
the official repository's evaluation/vqa_based/qwen.py)."""

from __future__ import annotations

INSTRUCTION = (
    "Please watch the video carefully and answer the question based solely on what you observe. "
    "Reply with 'yes' or 'no' followed by a brief explanation of your reasoning."
)


def question_text(question: str) -> str:
    """The user turn's text, exactly as the paper words it; the judge never sees the generation prompt."""
    return f"Question: {question}\n\n{INSTRUCTION}"


def parse_answer(text: str | None) -> str:
    """'yes' | 'no' | 'unknown' from a free-text reply, by the official qwen.py's `extract_yes_no`.

    1. lower-case and strip; the text before the first comma, stripped, starts with "yes" / "no";
    2. else "yes" is a substring and "no" is not (or the converse);
    3. else the first five whitespace-separated words joined by one space contain "yes", then "no", as
       substrings (not as words: "i know it is yes" is "no", from "know");
    4. else unknown.
    Every test is literal on purpose, as in the official judge: "Not sure" is "no", "the eyes are red" "yes".
    """
    text = (text or "").lower().strip()
    head = text.split(",", 1)[0].strip()
    for answer in ("yes", "no"):
        if head.startswith(answer):
            return answer
    has_yes, has_no = "yes" in text, "no" in text
    if has_yes != has_no:
        return "yes" if has_yes else "no"
    first_five = " ".join(text.split()[:5])
    for answer in ("yes", "no"):
        if answer in first_five:
            return answer
    return "unknown"
