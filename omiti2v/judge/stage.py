"""The judge stage: every question of every sample's video, in official, parity and/or fast mode, into judge.jsonl.

Resumable: a (sample, question, mode) already recorded without error by the same judge model, from the same
video bytes (the record's video_sha256), is skipped; a regenerated or replaced video is judged again.
A missing or undecodable video gives one record per question with correct=false and the error, so the
summary counts it as failed and lists it.

Flow: every pending video is sized from its header (no decoding). Official mode (official.py) then judges one
sample at a time, one generate per question, while `judge.decode_workers` threads decode the next samples'
videos and build their questions' processor inputs: no batch, so no reply depends on free memory. Parity and
fast pack the samples into batches (`judge.batch_samples`: `auto` plans them from free memory, see batching.py;
or a fixed count), and while the model answers one batch, the threads decode and resize the next batch's videos.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from omegaconf import DictConfig
from tqdm.auto import tqdm

from ..claims import Claims, ClaimSettings, claimed_batches
from ..config_rules import group_problems
from ..data import Benchmark, Sample
from ..runs import JudgeRunDir, RunDir, append_jsonl, read_jsonl, to_plain, video_sha256s
from .batching import RowTokens, fixed_plan, planner_for, split_on_oom
from .families import JUDGES
from .model import SampleItem, VqaJudge, load_judge_model, tiny_judge_folder
from .official import official_replies, question_inputs
from .options import CONFIG_RULES, FAST, OFFICIAL, PARITY, modes_of
from .protocol import parse_answer
from .video import (
    PAPER_FPS,
    PAPER_MAX_NEW_TOKENS,
    PAPER_MAX_PIXELS,
    PAPER_METADATA_FPS,
    VideoPlan,
    VideoSpec,
    load_judge_video,
    plan_judge_video,
)

log = logging.getLogger(__name__)


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
    max_new_tokens: int = PAPER_MAX_NEW_TOKENS
    batch_samples: int | str = "auto"  # "auto": planned from free memory; or a fixed number of samples
    decode_workers: int = 4

    @property
    def parity_and_fast(self) -> bool:
        """Both text and P(yes) answers asked (`judge.mode=both`): a sample pending the same questions in both
        modes gets both from one pass over its video prefix."""
        return PARITY in self.modes and FAST in self.modes

    @classmethod
    def from_config(cls, judge: DictConfig) -> JudgeSettings:
        for key in ("name", "model", "mode"):
            if judge.get(key) is None:
                raise ValueError(f"judge.{key}: missing from the judge config")
        problems = group_problems(CONFIG_RULES, "judge", to_plain(judge))
        if problems:
            raise ValueError("; ".join(problems))
        mode = str(judge.mode)
        batch = judge.get("batch_samples", "auto")
        metadata_fps = judge.get("metadata_fps", PAPER_METADATA_FPS)
        return cls(
            name=str(judge.name),
            model=str(judge.model),
            modes=modes_of(mode),
            dtype=str(judge.get("dtype", "bfloat16")),
            device_map=judge.get("device_map"),
            attn_implementation=judge.get("attn_implementation", "sdpa"),
            video=VideoSpec(
                fps=float(judge.get("fps", PAPER_FPS)),
                max_pixels=int(judge.get("max_pixels", PAPER_MAX_PIXELS)),
                min_pixels=judge.get("min_pixels"),
                metadata_fps=None if metadata_fps is None else float(metadata_fps),
            ),
            max_new_tokens=int(judge.get("max_new_tokens", PAPER_MAX_NEW_TOKENS)),
            batch_samples=batch,
            decode_workers=int(judge.get("decode_workers", 4)),
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


def done_questions(path: Path, judge_model: str, shas: dict[str, str | None]) -> set[tuple[str, str, str]]:
    """(sample, question, mode) answered without error by this judge model in an earlier invocation, from the
    video that is there now (`shas`: sample -> sha256 of its current video; records older than the field pass)."""
    return {
        (r["sample_id"], str(r["question_id"]), r["mode"])
        for r in read_jsonl(path)
        if r.get("error") is None and r.get("judge_model") == judge_model
        and r.get("video_sha256", shas.get(r["sample_id"])) == shas.get(r["sample_id"])
    }


@dataclass
class JudgeJob:
    """One sample's pending work: its video file, read plan, and the questions still to answer per mode."""

    sample: Sample
    path: Path
    plan: VideoPlan
    pending: dict[str, list]


def row_tokens(judge: VqaJudge, job: JudgeJob, max_new_tokens: int) -> RowTokens:
    """The sample's prefix length and what its row holds after it: every question's prompt suffix side by side,
    and with parity one reply per question."""
    suffixes = {mode: sum(len(judge.suffix_ids(q.question)) for q in qs) for mode, qs in job.pending.items()}
    replies = len(job.pending.get("parity", ())) * max_new_tokens
    return RowTokens(judge.prefix_length(job.plan), max(max(suffixes.values()), suffixes.get("parity", 0) + replies))


def plan_batches(judge: VqaJudge, settings: JudgeSettings, jobs: Sequence[JudgeJob]) -> list[list[JudgeJob]]:
    if settings.batch_samples == "auto":
        planner = planner_for(judge.model)
        order = planner.plan([row_tokens(judge, job, settings.max_new_tokens) for job in jobs])
        log.info("judge: batch plan for a %.1f GiB budget: %s samples per batch", planner.budget_bytes / 2**30,
                 "/".join(str(len(b)) for b in order))
    else:
        order = fixed_plan(len(jobs), settings.batch_samples)
    return [[jobs[i] for i in batch] for batch in order]


def _plan_or_error(path: Path, spec: VideoSpec) -> VideoPlan | Exception:
    try:
        return plan_judge_video(path, spec)
    except Exception as exc:  # a missing or broken video is a per-sample failure, never a crash
        return exc


def _timed_load(job: JudgeJob, spec: VideoSpec, prepare=None):
    """(video, or `prepare(job, video)` when given, or the exception; CPU seconds) — runs in a background worker."""
    start = time.perf_counter()
    try:
        video = load_judge_video(job.path, spec, job.plan)
    except Exception as exc:  # a broken video is a per-sample failure, never a crash
        video = exc
    if prepare is not None and not isinstance(video, Exception):
        video = prepare(job, video)
    return video, time.perf_counter() - start


def prefetched(batches: Sequence[Sequence[JudgeJob]], spec: VideoSpec, workers: int, prepare=None) -> Iterator[tuple]:
    """(batch, videos or exceptions, decode CPU seconds, seconds the GPU waited): the next batch's videos are
    decoded (and passed through `prepare(job, video)`) by `workers` threads while the caller works on the current one."""
    with ThreadPoolExecutor(max(1, workers), thread_name_prefix="judge-decode") as pool:
        def submit(batch):
            return [pool.submit(_timed_load, job, spec, prepare) for job in batch]

        pending = submit(batches[0]) if batches else []
        for i, batch in enumerate(batches):
            start = time.perf_counter()
            loaded = [f.result() for f in pending]
            waited = time.perf_counter() - start
            pending = submit(batches[i + 1]) if i + 1 < len(batches) else []
            yield batch, [v for v, _ in loaded], sum(t for _, t in loaded), waited


def judge_batch(judge: VqaJudge, mode: str, items: Sequence[SampleItem]) -> list[list | tuple | Exception]:
    """Answers per sample (`both`: (replies, P(yes)) pairs); a batch that runs out of memory is split and retried
    (see `split_on_oom`)."""
    answer = {"fast": judge.fast, "parity": judge.parity, "both": judge.both}[mode]
    return split_on_oom(answer, items, f"{mode} batch")


def claim_scope(run: RunDir) -> str:
    """Claims per judge log: the run's judge and an extra judge (judges/<name>/) never block each other."""
    return "judge" if run.judge_log.parent == run.path else f"judge-{run.judge_log.parent.name}"


# Samples claimed at a time: each claimed group is then split into memory-planned batches.
CLAIM_GROUP = 8


def judge_samples(judge: VqaJudge, settings: JudgeSettings, run: RunDir, samples: Sequence[Sample],
                  model_label: str, claim_settings: ClaimSettings | None = None) -> None:
    """Judge the pending questions of `samples`, appending records batch by batch (a kill loses one batch).

    Launches on one run folder share the work: each claims groups of samples before judging them, and a group
    another launch finished meanwhile is dropped."""
    shas = video_sha256s(run, [s.id for s in samples])
    done = done_questions(run.judge_log, model_label, shas)
    todo = []
    for s in samples:
        pending = {m: [q for q in s.questions if (s.id, str(q.id), m) not in done] for m in settings.modes}
        if any(pending.values()):
            todo.append((s, pending))
    with ThreadPoolExecutor(max(1, settings.decode_workers)) as pool:  # headers only, no pixels decoded
        plans = list(pool.map(lambda item: _plan_or_error(run.video(item[0].id), settings.video), todo))
    jobs, failed = [], []
    for (s, pending), plan in zip(todo, plans, strict=True):
        if isinstance(plan, Exception):  # missing or unreadable: a per-sample failure, recorded now
            failed += error_records(s, pending, f"{run.video(s.id)}: {type(plan).__name__}: {plan}", model_label)
        else:
            jobs.append(JudgeJob(s, run.video(s.id), plan, pending))
    total = sum(len(qs) for job in jobs for qs in job.pending.values()) + len(failed)
    if not total:
        log.info("judge: all %d samples already judged in %s", len(samples), run.judge_log)
        return
    append_jsonl(run.judge_log, with_video_sha256(failed, shas))
    def settled(ids: list[str]) -> set[str]:
        now = done_questions(run.judge_log, model_label, shas)
        return {job.sample.id for job in jobs if job.sample.id in ids
                and all((job.sample.id, str(q.id), m) in now for m, qs in job.pending.items() for q in qs)}

    with tqdm(total=total, desc=f"judge {settings.name} ({'+'.join(settings.modes)})", unit="q") as bar, \
            Claims(run.path, claim_scope(run), claim_settings or ClaimSettings()) as claims:
        bar.update(len(failed))
        for group in claimed_batches(claims, jobs, CLAIM_GROUP, lambda job: job.sample.id, settled):
            judge_group(judge, settings, run, group, model_label, shas, bar)


def judge_official(judge: VqaJudge, settings: JudgeSettings, run: RunDir, jobs: list[JudgeJob], model_label: str,
                   shas: dict[str, str | None], bar) -> None:
    """The claimed `jobs` in official mode: one sample at a time, one generate per question, its records appended
    as soon as it is done; groups of `decode_workers` samples are decoded and their inputs built meanwhile."""
    def prepare(job: JudgeJob, video):
        with judge.processor_copies.borrowed() as processor:
            return question_inputs(judge, video, [q.question for q in job.pending[OFFICIAL]], processor)

    groups = fixed_plan(len(jobs), max(1, settings.decode_workers))
    for group, prepared, cpu_s, waited_s in prefetched([[jobs[i] for i in g] for g in groups], settings.video,
                                                       settings.decode_workers, prepare):
        for job, inputs in zip(group, prepared, strict=True):
            start = time.perf_counter()
            if isinstance(inputs, Exception):
                records = error_records(job.sample, job.pending, f"{job.path}: {type(inputs).__name__}: {inputs}",
                                        model_label)
            else:
                replies = official_replies(judge, inputs, judge.max_new_tokens, judge.min_new_tokens)
                records = mode_records(job, OFFICIAL, replies, model_label)
            append_jsonl(run.judge_log, with_video_sha256(records, shas))
            bar.update(len(records))
            log.info("judge %s: %d questions in %.2f s", job.sample.id, len(records), time.perf_counter() - start)
        log.info("judge: %d samples decoded and prepared in %.2f s CPU in workers (GPU waited %.2f s)", len(group),
                 cpu_s, waited_s)


def judge_group(judge: VqaJudge, settings: JudgeSettings, run: RunDir, jobs: list[JudgeJob], model_label: str,
                shas: dict[str, str | None], bar) -> None:
    """The claimed `jobs`: memory-planned batches, the next batch decoded while the model works."""
    if settings.modes == (OFFICIAL,):
        judge_official(judge, settings, run, jobs, model_label, shas, bar)
        return
    batches = plan_batches(judge, settings, jobs)
    for b, (batch, videos, cpu_s, waited_s) in enumerate(prefetched(batches, settings.video, settings.decode_workers)):
        start = time.perf_counter()
        records = []
        ready = []
        for job, video in zip(batch, videos, strict=True):
            if isinstance(video, Exception):
                error = f"{job.path}: {type(video).__name__}: {video}"
                records += error_records(job.sample, job.pending, error, model_label)
            else:
                ready.append((job, video))
        shared = [(job, video) for job, video in ready if settings.parity_and_fast and job.pending[PARITY]
                  and job.pending[PARITY] == job.pending[FAST]]
        shared_jobs = {id(job) for job, _ in shared}
        if shared:
            items = [SampleItem(video, [q.question for q in job.pending["parity"]]) for job, video in shared]
            for (job, _), outs in zip(shared, judge_batch(judge, "both", items), strict=True):
                replies, p_yes = (outs, outs) if isinstance(outs, Exception) else outs
                records += mode_records(job, "parity", replies, model_label) + mode_records(job, "fast", p_yes, model_label)
        for mode in settings.modes:
            group = [(job, video) for job, video in ready if job.pending[mode] and id(job) not in shared_jobs]
            if not group:
                continue
            items = [SampleItem(video, [q.question for q in job.pending[mode]]) for job, video in group]
            for (job, _), outs in zip(group, judge_batch(judge, mode, items), strict=True):
                records += mode_records(job, mode, outs, model_label)
        append_jsonl(run.judge_log, with_video_sha256(records, shas))
        bar.update(len(records))
        log.info("judge batch %d/%d: %d samples, %d questions; decode %.2f s CPU in workers (GPU waited %.2f s), "
                 "model %.2f s", b + 1, len(batches), len(batch), len(records), cpu_s, waited_s,
                 time.perf_counter() - start)


def with_video_sha256(records: list[dict], shas: dict[str, str | None]) -> list[dict]:
    """Each record names the video bytes it judged (resume redoes it when they change)."""
    return [{**rec, "video_sha256": shas.get(rec["sample_id"])} for rec in records]


def error_records(sample: Sample, pending: dict[str, list], error: str, model_label: str) -> list[dict]:
    return [record(sample, q, m, model_label, error=error) for m, qs in pending.items() for q in qs]


def mode_records(job: JudgeJob, mode: str, outs: list | Exception, model_label: str) -> list[dict]:
    """One record per pending question of `mode`; `outs`: one answer per question (an exception for a question
    that failed alone), or the exception of the whole sample."""
    questions = job.pending[mode]
    outs = [outs] * len(questions) if isinstance(outs, Exception) else outs
    kw = "p_yes" if mode == "fast" else "response"
    return [record(job.sample, q, mode, model_label, error=f"{type(out).__name__}: {out}") if isinstance(out, Exception)
            else record(job.sample, q, mode, model_label, **{kw: out}) for q, out in zip(questions, outs, strict=True)]


def open_judge(settings: JudgeSettings, device: str) -> tuple[VqaJudge, JudgeSettings, str]:
    """(judge, settings with the family's frame sizing, record label) on `device` (resolved, see
    omiti2v.devices): the registry entry of `settings.name` gives the family's loader, frame sizing (from its
    processor) and tiny builder. The label is the checkpoint, or the entry's name for a tiny judge."""
    entry = JUDGES.lookup(settings.name)
    model_path = settings.model
    if settings.model == "tiny":
        folder = f"tiny-{entry.family}-judge"
        try:
            model_path = str(entry.build_tiny(tiny_judge_folder(folder)))
        except OSError:  # read-only home: build it in a temp folder instead
            model_path = str(entry.build_tiny(Path(tempfile.mkdtemp(prefix="omiti2v-tiny-judge-")) / folder))
        log.warning("judge: the tiny random-weight judge answers meaninglessly (smoke run only)")
    model, processor = load_judge_model(
        model_path,
        dtype=settings.dtype,
        device_map=settings.device_map,
        device=device,
        attn_implementation=settings.attn_implementation,
        model_class=entry.model_class,
    )
    settings = replace(settings, video=entry.video_spec(settings.video, processor))
    judge = VqaJudge(model, processor, max_new_tokens=settings.max_new_tokens, family=entry)
    return judge, settings, record_label(settings)


def record_label(settings: JudgeSettings) -> str:
    """The judge_model of its records: the checkpoint, or the entry's name for a tiny judge."""
    return settings.name if settings.model == "tiny" else settings.model


def run_judge(ctx, run: RunDir, benchmark: Benchmark) -> None:
    """Pipeline stage "judge": judges run.video(id) for every sample of the benchmark with the run's judge
    settings (`ctx`: omiti2v.context.RunContext). A run judged by another judge already keeps its records: this
    judge's go to judges/<name>/ (as `rejudge`)."""
    settings = ctx.judge
    label = record_label(settings)
    headline = next((r.get("judge_model") for r in read_jsonl(run.judge_log)), label)
    target = run if headline == label else JudgeRunDir(run, settings.name)
    done = done_questions(target.judge_log, label, video_sha256s(run, benchmark.ids))
    if all((s.id, str(q.id), m) in done for s in benchmark for q in s.questions for m in settings.modes):
        log.info("judge: all %d samples already judged in %s; the judge is not loaded", len(benchmark), target.judge_log)
        return
    judge, settings, label = open_judge(settings, ctx.device)
    judge_samples(judge, settings, target, list(benchmark), label, ClaimSettings.from_config(ctx.cfg.get("claims")))
