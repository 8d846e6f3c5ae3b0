"""The `judge` group's modes and what its keys must be, read by `JudgeSettings` (stage.py) and by the config
check before anything loads (so `judge.batch_samples=-2` stops the run before generation, not after it)."""

from __future__ import annotations

from ..config_rules import number, one_of
from ..dtypes import DTYPE_NAMES

OFFICIAL = "official"  # one generate per question, no batch: the paper's released qwen.py (official.py)
MODES = ("parity", "fast")  # what `both` runs. parity: the same generate-and-parse with a sample's questions side by
#                             side; fast: P(yes) from one forward
PARITY, FAST = MODES
ANSWER_MODES = (OFFICIAL, *MODES)  # the `mode` a judge record can have
TEXT_MODES = (OFFICIAL, PARITY)  # whose records hold the reply text (parsed by protocol.parse_answer)
MODE_CHOICES = (*ANSWER_MODES, "both")
JUDGE_DTYPES = (*DTYPE_NAMES, "auto")  # auto: the checkpoint's own

CONFIG_RULES = {
    "judge.mode": one_of(*MODE_CHOICES),
    "judge.dtype": one_of(*JUDGE_DTYPES),
    "judge.max_new_tokens": number(ge=1, integer=True),
    "judge.batch_samples": number(ge=1, integer=True, also=("auto",)),
    "judge.decode_workers": number(ge=1, integer=True),
    "judge.fps": number(gt=0),
    "judge.max_pixels": number(ge=1, integer=True),
}


def modes_of(mode: str) -> tuple[str, ...]:
    """The answering modes `judge.mode` stands for."""
    return MODES if mode == "both" else (mode,)
