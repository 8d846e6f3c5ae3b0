"""Run folders read into the browse page's rows: one per sample, with one column of results per run.

Everything comes from a run's own files through the readers the summary stage uses: the benchmark its
config.yaml selects (prompts, questions, images), checked against summary.json's hash when there is one; the
latest judge.jsonl verdict per question in the mode the run reports (a parity reply re-parsed by today's parser,
as the summary does), with P(yes) from the fast mode when it ran too; the latest scores.jsonl record per sample
and metric, every metric found (not only the paper's); generation.jsonl's status per sample. What is missing
(a video, a question not judged, a stage that never ran) is marked on the row, never an error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from omegaconf import OmegaConf

from ..data import Benchmark, benchmark_from_config
from ..data.records import Sample
from ..errors import SetupError
from ..judge.protocol import parse_answer
from ..runs import JudgeRunDir, RunDir, latest_records, read_jsonl
from ..safeload import read_json
from ..summary import VISUAL_METRICS, latest_judge_records, reported_judge_mode, verdict_correct


@dataclass(frozen=True)
class RunRecords:
    """One run folder's records, latest per key."""

    run: RunDir
    summary: dict | None
    config: dict
    benchmark: Benchmark
    judge_mode: str | None
    judge: dict[tuple[str, str, str], dict] | None  # (sample, question, mode) -> record; None: no judge.jsonl
    scores: dict[tuple[str, str], dict]
    generation: dict[str, dict]

    @property
    def metrics(self) -> list[str]:
        found = {metric for _, metric in self.scores}
        return [m for m in VISUAL_METRICS if m in found] + sorted(found - set(VISUAL_METRICS))


def load_run(path: str | Path, judge: str | None = None, data_root: str | None = None) -> RunRecords:
    """A run folder's records and its benchmark; SetupError naming the file when the folder or its benchmark
    cannot be read. `judge`: read the verdicts of that extra judge (judges/<judge>/judge.jsonl) instead."""
    path = Path(path)
    config_path = path / "config.yaml"
    if not config_path.is_file():
        raise SetupError(f"{config_path}: missing; not a run folder (every stage writes its config.yaml there)")
    config = OmegaConf.to_container(OmegaConf.load(config_path), resolve=False)
    summary = read_json(path / "summary.json") if (path / "summary.json").is_file() else None
    run = RunDir(path) if judge is None else JudgeRunDir(RunDir(path), judge)
    if judge is not None and not run.judge_log.is_file():
        raise SetupError(f"{run.judge_log}: missing; `omiti2v rejudge` writes it for judge {judge!r}")
    benchmark = run_benchmark(config_path, config, summary, data_root)
    records = latest_judge_records(run) if run.judge_log.is_file() else None
    reported = ((summary or {}).get("models") or {}).get("judge_mode")
    modes = {r.get("mode") for r in records or []}
    mode = reported if reported in modes or not modes else reported_judge_mode(records)
    return RunRecords(
        run=run, summary=summary, config=config, benchmark=benchmark, judge_mode=mode,
        judge=None if records is None else {(r["sample_id"], str(r["question_id"]), r.get("mode")): r for r in records},
        scores={(r["sample_id"], r["metric"]): r
                for r in latest_records(read_jsonl(run.scores_log), ("sample_id", "metric"))},
        generation={r["sample_id"]: r for r in latest_records(read_jsonl(run.generation_log), ("sample_id",))},
    )


def run_benchmark(config_path: Path, config: dict, summary: dict | None, data_root: str | None) -> Benchmark:
    """The selection config.yaml's data group names (data.root replaced by `data_root` when given), which must be
    the one summary.json recorded."""
    data = dict(config.get("data") or {})
    if not data.get("source"):
        raise SetupError(f"{config_path}: field 'data.source' missing")
    if data_root:
        data["root"] = data_root
    try:
        benchmark = benchmark_from_config(data)
    except SetupError:  # names its own files and fields
        raise
    except (FileNotFoundError, ValueError) as exc:
        raise SetupError(f"{config_path}: its benchmark cannot be loaded: {str(exc).splitlines()[0]}") from exc
    recorded = ((summary or {}).get("benchmark") or {}).get("hash")
    if recorded and recorded != benchmark.content_hash():
        raise SetupError(f"{config_path.parent / 'summary.json'}: the run was made on benchmark {recorded}, the "
                         f"one found here is {benchmark.content_hash()}; point --data-root at the run's copy")
    return benchmark


def run_info(rec: RunRecords, slot: str) -> dict:
    """The page's header line for one run: who made it and what of it is missing."""
    summary = rec.summary or {}
    ident = summary.get("run") or {}
    config = rec.config
    name = lambda group: (config.get(group) or {}).get("name")  # noqa: E731
    model = ident.get("model") or name("model")
    method = "-".join(str(x) for x in (ident.get("asm") or name("asm"), ident.get("schedule") or name("schedule")) if x)
    judge = (summary.get("models") or {}).get("judge") or (config.get("judge") or {}).get("model")
    if isinstance(rec.run, JudgeRunDir):
        judge = f"{rec.run.judge_name} (extra judge)"
    missing = []
    if rec.summary is None:
        missing.append("no summary.json: the summary stage has not run")
    if rec.judge is None:
        missing.append("no judge log: the judge stage has not run")
    if not rec.scores:
        missing.append("no scores: the score stage has not run")
    return {"slot": slot, "label": ident.get("name") or "/".join(rec.run.path.parts[-3:]), "model": model,
            "method": method, "profile": summary.get("profile"), "judge": judge, "judge_mode": rec.judge_mode,
            "smoke": bool(summary.get("smoke", config.get("smoke"))), "comparable": summary.get("comparable"),
            "notes": [str(n) for n in summary.get("notes") or []], "missing": missing}


def numeric_details(details, prefix: str = "") -> dict[str, float]:
    """The finite numbers of a score record's details, nested keys joined by dots (lists left out)."""
    out: dict[str, float] = {}
    for key, value in (details or {}).items() if isinstance(details, dict) else ():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(numeric_details(value, f"{name}."))
        elif isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            out[name] = value
    return out


def verdict(rec: RunRecords, sample: Sample, question) -> dict:
    """One question's verdict in the run's reported mode: right, wrong, or unjudged (no record, or an error)."""
    if rec.judge is None:
        return {"state": "unjudged", "note": "no judge log"}
    found = rec.judge.get((sample.id, question.id, rec.judge_mode))
    fast = rec.judge.get((sample.id, question.id, "fast"))
    p_yes = next((r["p_yes"] for r in (found, fast) if r and isinstance(r.get("p_yes"), int | float)), None)
    if found is None:
        return {"state": "unjudged", "note": "not judged", "p_yes": p_yes}
    reply = found.get("response")
    if found.get("error") is not None:
        return {"state": "unjudged", "note": f"judge error: {found['error']}", "reply": reply, "p_yes": p_yes}
    parity = found.get("mode") == "parity" and isinstance(reply, str)
    return {"state": "right" if verdict_correct(found, question.expected_answer) else "wrong",
            "answer": parse_answer(reply) if parity else found.get("answer"), "reply": reply, "p_yes": p_yes}


def video_state(rec: RunRecords, sample_id: str) -> tuple[Path | None, str | None]:
    """(video file, None) when it exists, else (None, why it is missing)."""
    path = rec.run.video(sample_id)
    if path.is_file():
        return path, None
    gen = rec.generation.get(sample_id)
    if gen is None:
        return None, "video missing (not generated)"
    if gen.get("status") == "failed":
        return None, f"video missing: generation failed: {gen.get('error')}"
    return None, f"video file missing (generation.jsonl: {gen.get('status')})"


def run_cell(rec: RunRecords, sample: Sample, metrics: list[str]) -> dict:
    """One run's results for one sample (the video as a path: the page writer turns it into a link)."""
    video, missing = video_state(rec, sample.id)
    scores = {}
    for metric in metrics:
        found = rec.scores.get((sample.id, metric))
        if found is not None:
            value = found.get("value")
            scores[metric] = {"value": value if isinstance(value, int | float) and math.isfinite(value) else None,
                              "error": found.get("error"), "details": numeric_details(found.get("details"))}
    gen = rec.generation.get(sample.id) or {}
    return {"video": video, "video_note": missing, "seed": gen.get("seed"),
            "verdicts": [verdict(rec, sample, q) for q in sample.questions], "scores": scores}


def sample_rows(runs: list[RunRecords]) -> tuple[list[dict], dict[str, list[str]]]:
    """The page's rows: the samples every run has (in the first run's order), and per run the ids left out
    because another run lacks them. Samples of one id must be the same record in every run."""
    others = [{s.id: s for s in r.benchmark} for r in runs[1:]]
    shared = [s for s in runs[0].benchmark if all(s.id in o for o in others)]
    for other, by_id in zip(runs[1:], others, strict=True):
        for s in shared:
            if by_id[s.id].raw != s.raw:
                raise SetupError(f"{other.run.path}: sample {s.id!r} differs from the one in {runs[0].run.path} "
                                 "(the runs were made on different benchmarks)")
    kept = {s.id for s in shared}
    left_out = {slot: [i for i in r.benchmark.ids if i not in kept] for slot, r in zip("AB", runs, strict=False)}
    metrics = list(dict.fromkeys(m for r in runs for m in r.metrics))
    rows = [{"id": s.id, "prompt": s.prompt, "expected_change": s.expected_change, "main": s.main_category,
             "sub": s.sub_category, "domain": s.domain, "style": s.style, "image": s.image_path,
             "questions": [{"id": q.id, "text": q.question, "category": q.category, "expected": q.expected_answer}
                           for q in s.questions],
             "runs": [run_cell(r, s, metrics) for r in runs]} for s in shared]
    return rows, left_out
