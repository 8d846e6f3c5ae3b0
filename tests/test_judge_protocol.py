"""The judge's answer parser against the official 4-step rule (extract_yes_no in evaluation/vqa_based/qwen.py of
https://github.com/LAW1223/AlignVid): its table and a property test
against a second, independently written statement of the same four steps."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omiti2v.judge import parse_answer


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("I do not see a kite, yes the line is there", "no"),  # step 3: "no" in "not" of the first five words
        ("I do not see it", "no"),              # step 2, from "not"
        ("the eyes are red", "yes"),            # step 2, from "eyes"
        ("the eyes are not visible", "yes"),    # step 3, "yes" first
        ("i do not see the eyes", "no"),        # step 3: first five words "i do not see the"
        ("Yes, the cat is there", "yes"),
        ("No. The cat is gone", "no"),          # step 1: "no. the cat is gone" starts with "no"
        ("none of them", "no"),                 # step 1, literal prefix
        ("I know the answer is yes", "no"),     # step 3: "know" in "i know the answer is"
        ("snow falls, yes", "yes"),             # step 3: "snow falls, yes" has "yes"
        ("Maybe, the sign reads YES", "yes"),
        ("   ", "unknown"),
        ("The video shows a car.", "unknown"),
        (None, "unknown"),
    ],
)
def test_parse_answer_reference_table(reply, expected):
    assert parse_answer(reply) == expected


def four_steps(reply: str) -> str:
    """The rule restated with other primitives (find/count/regex), so a slip in either version shows."""
    t = reply.lower().strip()
    comma = t.find(",")
    before_comma = (t if comma == -1 else t[:comma]).strip()
    if before_comma[:3] == "yes":
        return "yes"
    if before_comma[:2] == "no":
        return "no"
    yes_count, no_count = t.count("yes"), t.count("no")
    if yes_count and not no_count:
        return "yes"
    if no_count and not yes_count:
        return "no"
    window = " ".join(re.findall(r"\S+", t)[:5])
    if window.find("yes") >= 0:
        return "yes"
    if window.find("no") >= 0:
        return "no"
    return "unknown"


WORDS = ["eyes", "not", "know", "cannot", "snow", "nose", "yesterday", "Yes,", "No.", "none", "yes", "no",
         "YES", "the", "kite", "is", "there", "i", "see", "a", ",", "visible", "maybe"]
SEPARATORS = [" ", ", ", "  ", "\n", ","]


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(WORDS), st.sampled_from(SEPARATORS)), max_size=12), st.sampled_from(["", " ", "\n"]))
def test_parse_answer_equals_the_four_steps(pieces, lead):
    reply = lead + "".join(word + sep for word, sep in pieces)
    assert parse_answer(reply) == four_steps(reply)
