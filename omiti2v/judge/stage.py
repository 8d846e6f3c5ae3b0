"""The judge stage: every question of every sample's video, in parity and/or fast mode, into judge.jsonl.

Resumable: a (sample, question, mode) already recorded without error by the same judge model is skipped.
A missing or undecodable video gives one record per question with correct=false and the error, so the
summary counts it as failed and lists it.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig
from tqdm.auto import tqdm

from ..data import Benchmark, Sample
from ..runs import RunDir, append_jsonl, read_jsonl
from .model import SampleItem, VqaJudge, default_device, load_judge_model, tiny_judge_folder
from .protocol import parse_answer
from .video import PAPER_FPS, PAPER_MAX_PIXELS, VideoSpec, load_judge_video

log = logging.getLogger(__name__)

MODES = ("parity", "fast")


@dataclass(frozen=True)
class JudgeSettings:
    """The `judge` config group, validated."""

    name: str
    model: str
    modes: tuple[str, ...]
    dtype: str = "bfloat16"
    device_map: str | None = "auto"
    attn_implementation: str | None = "sdpa"
    video: VideoSpec = VideoSpec()
    max_new_tokens: int = 128
    batch_samples: int = 4

    @classmethod
    def from_config(cls, judge: DictConfig) -> JudgeSettings:
        for key in ("name", "model", "mode"):
            if judge.get(key) is None:
                raise ValueError(f"judge.{key}: missing from the judge config")
        mode = str(judge.mode)
        if mode not in (*MODES, "both"):
            raise ValueError(f"judge.mode: {mode!r} is not one of parity, fast, both")
        batch = int(judge.get("batch_samples", 4))
        if batch < 1:
            raise ValueError(f"judge.batch_samples: must be >= 1, got {batch}")
        return cls(
            name=str(judge.name),
            model=str(judge.model),
            modes=MODES if mode == "both" else (mode,),
            dtype=str(judge.get("dtype", "bfloat16")),
            device_map=judge.get("device_map"),
            attn_implementation=judge.get("attn_implementation", "sdpa"),
            video=VideoSpec(
                fps=float(judge.get("fps", PAPER_FPS)),
                max_pixels=int(judge.get("max_pixels", PAPER_MAX_PIXELS)),
                min_pixels=judge.get("min_pixels"),
            ),
            max_new_tokens=int(judge.get("max_new_tokens", 128)),
            batch_samples=batch,
        )


def record(sample: Sample, question, mode: str, judge_model: str, *, response: str | None = None,
           p_yes: float | None = None, error: str | None = None) -> dict:
    """One judge.jsonl line (schema in the brief / omiti2v.summary): a verdict or an error for one question."""
    if error is not None:
        answer = "unknown"
    elif mode == "fast":
        answer = "yes" if p_yes >= 0.5 else "no"
    else:
        answer = parse_answer(response)
    return {
        "sample_id": sample.id,
        "question_id": str(question.id),
        "category": question.category,
        "question": question.question,
        "expected": question.expected_answer,
        "answer": answer,
        "correct": error is None and answer == question.expected_answer,
        "response": response,
        "p_yes": p_yes,
        "mode": mode,
        "judge_model": judge_model,
        "error": error,
    }


def done_questions(path: Path, judge_model: str) -> set[tuple[str, str, str]]:
    """(sample, question, mode) answered without error by this judge model in an earlier invocation."""
    return {
        (r["sample_id"], str(r["question_id"]), r["mode"])
        for r in read_jsonl(path)
        if r.get("error") is None and r.get("judge_model") == judge_model
    }


def batches(items: Sequence, size: int) -> Iterator[Sequence]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def judge_samples(judge: VqaJudge, settings: JudgeSettings, run: RunDir, samples: Sequence[Sample],
                  model_label: str) -> None:
    """Judge the pending questions of `samples`, appending records batch by batch (a kill loses one batch)."""
    done = done_questions(run.judge_log, model_label)
    work = []  # (sample, {mode: pending questions})
    for s in samples:
        pending = {m: [q for q in s.questions if (s.id, str(q.id), m) not in done] for m in settings.modes}
        if any(pending.values()):
            work.append((s, pending))
    total = sum(len(qs) for _, p in work for qs in p.values())
    if not total:
        log.info("judge: all %d samples already judged in %s", len(samples), run.judge_log)
        return
    with tqdm(total=total, desc=f"judge {settings.name} ({'+'.join(settings.modes)})", unit="q") as bar:
        for chunk in batches(work, settings.batch_samples):
            records, ready = [], []
            for sample, pending in chunk:  # decode and resample each video once, shared by modes and questions
                try:
                    ready.append((sample, pending, load_judge_video(run.video(sample.id), settings.video)))
                except Exception as exc:  # a missing/broken video is a per-sample failure, never a crash
                    error = f"{run.video(sample.id)}: {type(exc).__name__}: {exc}"
                    records += [record(sample, q, m, model_label, error=error) for m, qs in pending.items() for q in qs]
            for mode in settings.modes:
                group = [(s, p[mode], v) for s, p, v in ready if p[mode]]
                if not group:
                    continue
                items = [SampleItem(v, [q.question for q in qs]) for _, qs, v in group]
                answers = judge.fast(items) if mode == "fast" else judge.parity(items)
                for (sample, qs, _), outs in zip(group, answers, strict=True):
                    for q, out in zip(qs, outs, strict=True):
                        kw = {"p_yes": out} if mode == "fast" else {"response": out}
                        records.append(record(sample, q, mode, model_label, **kw))
            append_jsonl(run.judge_log, records)
            bar.update(len(records))


def run_judge(cfg: DictConfig, run: RunDir, benchmark: Benchmark) -> None:
    """Pipeline stage "judge": reads cfg.judge, judges run.video(id) for every sample of the benchmark."""
    settings = JudgeSettings.from_config(cfg.judge)
    model_path = settings.model
    if settings.model == "tiny":
        from .tiny import build_tiny_judge

        try:
            model_path = str(build_tiny_judge(tiny_judge_folder()))
        except OSError:  # read-only home: build it in a temp folder instead
            model_path = str(build_tiny_judge(Path(tempfile.mkdtemp(prefix="omiti2v-tiny-judge-"))))
        log.warning("judge: the tiny random-weight judge answers meaninglessly (smoke run only)")
    model, processor = load_judge_model(
        model_path,
        dtype=settings.dtype,
        device_map=settings.device_map,
        device=default_device(cfg.get("device", "auto")),
        attn_implementation=settings.attn_implementation,
    )
    judge = VqaJudge(model, processor, max_new_tokens=settings.max_new_tokens)
    judge_samples(judge, settings, run, list(benchmark), settings.model)
