"""VQA judge (the paper's protocol, arXiv 2512.01334; its released qwen.py): a VLM (the paper's Qwen2.5-VL-32B by default; other families in families.py) answers
each sample's yes/no questions about its generated video.

`run_judge` is the pipeline stage; `parse_answer` is the paper's answer-parsing rule; `VqaJudge` holds the
answering modes (official: one generate per question, as qwen.py; parity: the same generate-and-parse with a
sample's questions decoded side by side; fast: P(yes) from one forward with the video prefix shared by the
questions of a sample); `batching` plans parity's and fast's batches from free memory. docs/judges.md. The
modules (and torch, transformers) load on first use.
"""

from ..registry import lazy_exports

__getattr__ = lazy_exports(__name__, {
    ".model": ("JudgeWeightsError", "SampleItem", "VqaJudge", "load_judge_model"),
    ".protocol": ("INSTRUCTION", "parse_answer", "question_text"),
    ".stage": ("JudgeSettings", "judge_samples", "run_judge"),
    ".video": ("JudgeVideo", "VideoPlan", "VideoSpec", "load_judge_video", "plan_judge_video"),
})

__all__ = [
    "INSTRUCTION",
    "JudgeSettings",
    "JudgeVideo",
    "JudgeWeightsError",
    "SampleItem",
    "VideoPlan",
    "VideoSpec",
    "VqaJudge",
    "judge_samples",
    "load_judge_model",
    "load_judge_video",
    "parse_answer",
    "plan_judge_video",
    "question_text",
    "run_judge",
]
