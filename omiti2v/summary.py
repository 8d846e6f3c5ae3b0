"""The run summary: per-sample results from judge.jsonl and scores.jsonl turned into the paper's metrics.

The summary stage (`run_summary`) writes the two files everything downstream reads (tables, plots, the leaderboard), so no
reader reloads the benchmark or re-derives a setting: summary.json (the cells, the run's identity and the ASM
its videos were made with, `resolved_asm`) and samples.csv (one row per sample with every per-sample metric).

VQA numbers follow the paper: per-sample accuracy (correct / questions), averaged over samples overall, per
main category and per domain (macro); per question category over questions (micro). Visual metrics are means
over videos. All in percent with n and a seeded 95 % bootstrap CI. A sample whose video file is missing is,
by `missing_video`, either left out of every VQA mean and listed (`exclude`, the official qwen.py) or counted
as wrong (`wrong`); a video that exists but cannot be decoded always stays in and scores 0. The schema is
omiti2v/schemas/summary.schema.json; bump SCHEMA_VERSION when it changes.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import pandas as pd
from omegaconf import OmegaConf

from .data import MAIN_CATEGORIES, Benchmark, load_local
from .errors import SetupError
from .judge.options import ANSWER_MODES, TEXT_MODES
from .judge.protocol import parse_answer
from .runs import (
    RunDir,
    RunFailedError,
    atomic_write_json,
    atomic_write_text,
    config_hash,
    held_sample_ids,
    latest_records,
    read_jsonl,
    versions,
)
from .schemas import current_version
from .stats import mean_cell

SCHEMA_VERSION = current_version("summary")
MISSING_VIDEO_POLICIES = ("exclude", "wrong")
VISUAL_METRICS = ("dynamic_degree", "aesthetic_quality", "imaging_quality",
                  "i2v_subject", "i2v_background", "copy_index")  # the last three: docs/scorers-negligence.md
SAMPLE_COLUMNS = ("main_category", "domain", "overall", *VISUAL_METRICS)


JUDGE_KEY = ("sample_id", "question_id", "mode")


def latest_judge_records(run: RunDir) -> list[dict]:
    return latest_records(read_jsonl(run.judge_log), JUDGE_KEY)


def judge_frame(run: RunDir | None, benchmark: Benchmark, mode: str | None = None,
                records: list[dict] | None = None) -> pd.DataFrame:
    """One row per (sample, question) of the benchmark, with the judge's latest verdict for `mode`.

    Questions the judge never answered (a missing video, a stage that stopped early) are incorrect and carry
    an error; `video_missing` marks samples without a video file (never, when `run` is None: records of an
    exported copy, whose exclusions come from its summary). A parity reply is re-parsed with today's
    parser, so a run judged before a parser change reports the current rule. `records`: the run's latest
    judge records when the caller has read them already.
    """
    recs = latest_judge_records(run) if records is None else records
    by_key = {(r["sample_id"], str(r["question_id"])): r for r in recs if mode is None or r.get("mode") == mode}
    rows = []
    for s in benchmark:
        missing = run is not None and not run.video(s.id).exists()
        for q in s.questions:
            r = by_key.get((s.id, q.id))
            rows.append({
                "sample_id": s.id,
                "question_id": q.id,
                "main_category": s.main_category,
                "domain": s.domain,
                "question_category": q.category,
                "correct": bool(r) and verdict_correct(r, q.expected_answer),
                "error": r.get("error") if r else "not judged",
                "video_missing": missing,
            })
    columns = ["sample_id", "question_id", "main_category", "domain", "question_category", "correct", "error", "video_missing"]
    return pd.DataFrame(rows, columns=columns)


def verdict_correct(record: dict, expected: str) -> bool:
    """A judge record's correctness; free-text replies (official, parity) go through the current parser."""
    if record.get("error") is not None:
        return False
    if record.get("mode") in TEXT_MODES and isinstance(record.get("response"), str):
        return parse_answer(record["response"]) == expected
    return bool(record.get("correct"))


def reported_judge_mode(records: list[dict]) -> str | None:
    """The judge mode whose verdicts a run reports, from the modes its judge records hold (what ran, whatever the
    config of this invocation says): official (the paper's procedure) before parity before fast, so a run judged
    with `judge.mode=both` reports parity and its fast verdicts enter judge_agreement. None without records."""
    modes = {r.get("mode") for r in records}
    return next((mode for mode in ANSWER_MODES if mode in modes), None)


def vqa_metrics(frame: pd.DataFrame, seed: int) -> tuple[dict, dict]:
    """(metrics, breakdown) from a judge frame: macro over samples, micro over questions per category."""
    per_sample = frame.groupby("sample_id", sort=False).agg(
        accuracy=("correct", "mean"), main_category=("main_category", "first"), domain=("domain", "first")
    )
    metrics = {"overall": mean_cell(per_sample["accuracy"], seed)}
    for cat in MAIN_CATEGORIES:
        metrics[cat] = mean_cell(per_sample.loc[per_sample["main_category"] == cat, "accuracy"], seed)
    breakdown = {
        "domain": {d: mean_cell(g["accuracy"], seed) for d, g in per_sample.groupby("domain")},
        "question_category": {c: mean_cell(g["correct"], seed) for c, g in frame.groupby("question_category")},
    }
    return metrics, breakdown


def judge_agreement(records: list[dict]) -> dict | None:
    """Share of questions where the parity and fast modes gave the same answer, when both ran."""
    answers: dict[tuple, dict[str, str]] = {}
    for r in records:
        if r.get("error") is None:
            answers.setdefault((r["sample_id"], str(r["question_id"])), {})[r["mode"]] = r.get("answer")
    both = [a for a in answers.values() if {"parity", "fast"} <= a.keys()]
    if not both:
        return None
    same = sum(a["parity"] == a["fast"] for a in both)
    return {"n": len(both), "agreement": 100.0 * same / len(both)}


def visual_metrics(run: RunDir, benchmark: Benchmark, seed: int) -> tuple[dict, dict[str, list[str]], dict]:
    """(metrics, failed ids per metric, scorer info) from scores.jsonl; metrics never scored are absent."""
    recs = latest_records(read_jsonl(run.scores_log), ("sample_id", "metric"))
    ids = set(benchmark.ids)
    metrics, failures, info = {}, {}, {}
    for name in VISUAL_METRICS:
        mine = [r for r in recs if r.get("metric") == name and r["sample_id"] in ids]
        if not mine:
            continue
        ok = [r for r in mine if r.get("error") is None and r.get("value") is not None]
        scored = {r["sample_id"] for r in ok}
        metrics[name] = mean_cell([r["value"] for r in ok], seed)
        failures[name] = sorted(ids - scored)
        info[name] = {
            "backend": mine[-1].get("backend"),
            "comparable": all(r.get("comparable", False) for r in mine),
        }
    return metrics, failures, info


def superseded_counts(run: RunDir) -> dict[str, dict[str, int]]:
    """Records a later one replaced, per stage and why: generation's `superseded` lines carry their reason
    (video_missing, size_mismatch, sha256_mismatch, ...); a judge or score record is replaced because its video
    changed, it had an error, or it was made again (`repeated`)."""
    out: dict[str, dict[str, int]] = {"generation": {}, "judge": {}, "scores": {}}
    for rec in read_jsonl(run.generation_log):
        if rec.get("status") == "superseded":
            out["generation"][rec["reason"]] = out["generation"].get(rec["reason"], 0) + 1
    for stage, path, key in (("judge", run.judge_log, JUDGE_KEY), ("scores", run.scores_log, ("sample_id", "metric"))):
        records = list(read_jsonl(path))
        latest = {tuple(r.get(k) for k in key): r for r in records}
        for rec in records:
            last = latest[tuple(rec.get(k) for k in key)]
            if rec is last:
                continue
            why = ("video_changed" if rec.get("video_sha256") != last.get("video_sha256")
                   else "error_retried" if rec.get("error") is not None else "repeated")
            out[stage][why] = out[stage].get(why, 0) + 1
    return out


def per_judge_scores(run: RunDir, benchmark: Benchmark, seed: int = 0) -> dict:
    """Semantic metrics per extra judge (run/judges/<name>/judge.jsonl, written by `omiti2v rejudge`), per mode."""
    out = {}
    for log in sorted(run.path.glob("judges/*/judge.jsonl")):
        records = latest_records(read_jsonl(log), JUDGE_KEY)
        modes = sorted({r["mode"] for r in records})
        out[log.parent.name] = {
            "judge_model": records[0]["judge_model"] if records else None,
            "metrics": {m: vqa_metrics(judge_frame(run, benchmark, m, records=records), seed)[0] for m in modes},
        }
    return out


def resolved_asm(generation_records: list[dict], selected: set[str], log: str, key: str = "resolved_asm") -> dict | None:
    """The ASM the selection's videos were made with: the `resolved_asm` of their ok generation records (what the
    generation stage installed); with `key="method"`, the method record (omiti2v.guidance.record) likewise. None
    when no record carries one: a submission's videos, or videos made before it was recorded. One run folder
    holds one configuration, so records that disagree raise."""
    found = {json.dumps(r[key], sort_keys=True) for r in generation_records
             if r.get("status") == "ok" and r["sample_id"] in selected and r.get(key) is not None}
    if len(found) > 1:
        what = "ASM" if key == "resolved_asm" else key
        raise ValueError(f"{log}: the videos were made with {len(found)} different {what} settings ({key}); "
                         "give each configuration its own run folder (variant=-<name>)")
    return json.loads(found.pop()) if found else None


def recorded_base_seed(generation_records: list[dict], selected: set[str], log: str) -> int | None:
    """The base seed the generation stage derived the selection's sample seeds from: the `base_seed` its records
    carry (resolved once per run by omiti2v.seeds.base_seed, see omiti2v.context). None when no record carries
    one (a submission's videos, videos made before it was recorded, nothing generated yet); records that disagree
    raise."""
    found = {r["base_seed"] for r in generation_records if r["sample_id"] in selected and r.get("base_seed") is not None}
    if len(found) > 1:
        raise ValueError(f"{log}: the videos were made from {len(found)} different base seeds {sorted(found)}; give "
                         "each configuration its own run folder")
    return found.pop() if found else None


def sample_table(benchmark: Benchmark, judge_records: list[dict] | None, score_records, judge_mode: str | None,
                 excluded: frozenset[str] = frozenset()) -> pd.DataFrame:
    """One row per benchmark sample (index sample_id): main category, domain, VQA accuracy `overall` (judge_frame's
    rules) and each visual metric, all in 0..1, NaN where there is no value: no judge log (`judge_records`
    None), a sample the summary left out of the VQA means (`excluded`), a metric not scored."""
    frame = pd.DataFrame(index=pd.Index(benchmark.ids, name="sample_id"), columns=list(SAMPLE_COLUMNS), dtype=float)
    frame["main_category"] = [s.main_category for s in benchmark]
    frame["domain"] = [s.domain for s in benchmark]
    if judge_records is not None:
        judged = judge_frame(None, benchmark, judge_mode, records=judge_records)
        judged = judged.loc[~judged["sample_id"].isin(excluded)]
        frame["overall"] = judged.groupby("sample_id", sort=False)["correct"].mean().reindex(frame.index).astype(float)
    ids = set(benchmark.ids)
    for rec in latest_records(score_records, ("sample_id", "metric")):
        metric, sid = rec.get("metric"), rec.get("sample_id")
        if metric in VISUAL_METRICS and sid in ids and rec.get("error") is None and rec.get("value") is not None:
            frame.loc[sid, metric] = float(rec["value"])
    return frame


def read_sample_table(path) -> pd.DataFrame:
    """samples.csv back as `sample_table` wrote it: ids and categories as text (an id "NA" stays "NA"), floats
    bit for bit, empty cells NaN."""
    return pd.read_csv(path, index_col="sample_id", float_precision="round_trip", keep_default_na=False,
                       na_values=[""], dtype={"sample_id": str, "main_category": str, "domain": str})


def write_summary(run: RunDir, benchmark: Benchmark, context: dict[str, Any], seed: int = 0) -> dict:
    """The summary stage's files: samples.csv, then summary.json (validated against its schema, written last so
    a run with a summary has its table); returns the summary."""
    summary = build_summary(run, benchmark, context, seed)
    validate_summary(summary, str(run.summary))
    judged = latest_judge_records(run) if run.judge_log.exists() else None
    table = sample_table(benchmark, judged, read_jsonl(run.scores_log), summary["models"]["judge_mode"],
                         frozenset(summary["failures"]["excluded"]))
    atomic_write_text(run.samples, table.to_csv())
    atomic_write_json(run.summary, summary)
    return summary


def build_summary(run: RunDir, benchmark: Benchmark, context: dict[str, Any], seed: int = 0) -> dict:
    """Assemble summary.json for a run. `context` carries run identity, models, seeds, flags, the profile,
    its deviations and the missing-video policy (default "wrong"); see the schema. What ran is read from the
    records: the judge mode reported (reported_judge_mode), the base seed (recorded_base_seed)."""
    missing_policy = context.get("missing_video", "wrong")
    if missing_policy not in MISSING_VIDEO_POLICIES:
        raise ValueError(f"judge.missing_video: {missing_policy!r} is not one of {', '.join(MISSING_VIDEO_POLICIES)}")
    metrics: dict[str, Any] = {}
    breakdown: dict[str, Any] = {}
    failures: dict[str, Any] = {"generation": [], "judge": [], "scores": {}, "excluded": []}
    gen = latest_records(read_jsonl(run.generation_log), ("sample_id",))
    selected = set(benchmark.ids)
    failures["generation"] = sorted(r["sample_id"] for r in gen if r.get("status") != "ok" and r["sample_id"] in selected)
    agreement = judge_mode = None
    if run.judge_log.exists():
        judged = latest_judge_records(run)
        judge_mode = reported_judge_mode(judged)
        frame = judge_frame(run, benchmark, judge_mode, records=judged)
        failures["judge"] = sorted(set(frame.loc[frame["error"].notna(), "sample_id"]))
        if missing_policy == "exclude":
            failures["excluded"] = sorted(set(frame.loc[frame["video_missing"], "sample_id"]))
            frame = frame.loc[~frame["video_missing"]]
        metrics, breakdown = vqa_metrics(frame, seed)
        agreement = judge_agreement(judged)
    visual, failures["scores"], scorer_info = visual_metrics(run, benchmark, seed)
    metrics.update(visual)
    comparable = bool(context.get("comparable", True)) and all(i["comparable"] for i in scorer_info.values())
    return {
        "schema_version": SCHEMA_VERSION,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "run": context["run"],
        "profile": context.get("profile"),
        "deviations": list(context.get("deviations", [])),
        "missing_video": missing_policy,
        "smoke": bool(context.get("smoke", False)),
        "comparable": comparable,
        "notes": list(context.get("notes", [])),
        "benchmark": {"source": benchmark.source, "hash": benchmark.content_hash(), "n_samples": len(benchmark)},
        "models": {**context.get("models", {}), "judge_mode": judge_mode, "scorers": scorer_info},
        "seeds": {"base": recorded_base_seed(gen, selected, str(run.generation_log)), **context.get("seeds", {}),
                  "bootstrap": seed},
        "versions": versions(),
        "metrics": metrics,
        "breakdown": breakdown,
        "resolved_asm": resolved_asm(gen, selected, str(run.generation_log)),
        "method": resolved_asm(gen, selected, str(run.generation_log), key="method"),
        "judge_agreement": agreement,
        "failures": failures,
        "superseded": superseded_counts(run),
        **({"judges": judges} if (judges := per_judge_scores(run, benchmark, seed)) else {}),
    }


def summary_schema() -> dict:
    return json.loads(resources.files("omiti2v.schemas").joinpath("summary.schema.json").read_text())


def validate_summary(summary: dict, source: str = "summary.json") -> None:
    """Raise ValueError naming the file and the offending field when a summary breaks the schema."""
    import jsonschema

    errors = sorted(jsonschema.Draft202012Validator(summary_schema()).iter_errors(summary), key=lambda e: list(e.path))
    if errors:
        lines = [f"{source}: field '{'.'.join(map(str, e.path)) or '<root>'}': {e.message}" for e in errors]
        raise ValueError("\n".join(lines))


def summary_context(ctx) -> dict:
    """summary.json's identity, models, seeds and profile fields from the run's resolved settings (`ctx`:
    omiti2v.context.RunContext). A leaderboard submission (`submission.model`, set by `omiti2v submit`) brought
    its own videos: no generator, ASM or schedule of ours enters them."""
    from .profile import profile_context  # loads torch (through asm); tables and plots never call this

    cfg = ctx.cfg
    resolved = OmegaConf.to_container(cfg, resolve=True)
    submitted = (cfg.get("submission") or {}).get("model")
    seeds = {}  # a generated run's base seed is read from its generation records (build_summary)
    if submitted:
        run = {"model": submitted, "asm": "submission", "schedule": "submission"}
        hashed, generator, seeds = ("data", "judge", "scorer", "seed"), f"submission:{submitted}", {"base": ctx.seed}
    else:
        guidance = str((cfg.get("guidance") or {}).get("name") or "none")
        run = {"model": cfg.model.name, "asm": cfg.asm.name, "schedule": cfg.schedule.name,
               "variant": str(cfg.get("variant") or ""),
               "compile": str((cfg.get("generation") or {}).get("compile") or "none"), "guidance": guidance}
        hashed = ("data", "model", "asm", "schedule", "judge", "scorer", "seed") + (("guidance",) if guidance != "none" else ())
        weights = cfg.model.get("weights")
        generator = cfg.model.get("checkpoint") if weights == "pretrained" else f"{weights}:{cfg.model.name}"
    smoke = bool(cfg.get("smoke", False))
    return {
        "run": {"name": cfg.run_name, "data": cfg.data.name, **run,
                "config_hash": config_hash({k: resolved[k] for k in hashed})},
        "smoke": smoke,
        "comparable": not smoke,
        "notes": list(cfg.get("notes") or []),
        "models": {"generator": generator, "judge": cfg.judge.get("model")},
        "seeds": {**seeds, **({"replicate": ctx.replicate} if ctx.replicate is not None else {})},
        **profile_context(cfg, generation=not submitted),
    }


def covered_selection(run: RunDir, benchmark: Benchmark) -> Benchmark:
    """What a summary of `run` covers: the invocation's selection and every sample the folder holds, in
    benchmark order, so a subset run (data.limit, data.ids, ...) on a finished folder never shrinks its summary.
    A folder that holds nothing has nothing to summarize (SetupError, nothing written)."""
    held = held_sample_ids(run)
    if not held:
        raise SetupError(f"{run.path}: nothing to summarize (no generation.jsonl, judge.jsonl, scores.jsonl or "
                         "videos); run the stages before the summary first")
    if held <= set(benchmark.ids):
        return benchmark
    keep = held | set(benchmark.ids)
    full = load_local(benchmark.root, check_images=False, source=benchmark.source)
    return Benchmark(benchmark.root, tuple(s for s in full if s.id in keep), benchmark.source)


def every_sample_failed(run: RunDir, benchmark: Benchmark, summary: dict) -> bool:
    """No sample has a result: each failed its generation, or got no answered question (or was left out) and no
    score. Generation alone counts when neither the judge nor a scorer ran."""
    failures = summary["failures"]
    scored = failures["scores"].values()
    answered: set[str] = set()
    if run.judge_log.exists():
        frame = judge_frame(run, benchmark, summary["models"]["judge_mode"])
        answered = set(frame.loc[frame["error"].isna(), "sample_id"]) - set(failures["excluded"])
    elif not scored:
        return bool(benchmark.ids) and set(benchmark.ids) <= set(failures["generation"])
    return bool(benchmark.ids) and all(sid in failures["generation"] or (sid not in answered and all(
        sid in failed for failed in scored)) for sid in benchmark.ids)


def run_summary(ctx, run: RunDir, benchmark: Benchmark) -> dict:
    """Pipeline stage "summary": samples.csv and summary.json (validated against the schema) over what the
    folder holds, then the headline numbers printed; RunFailedError when every sample failed. `ctx`: the run's
    resolved settings (omiti2v.context.RunContext)."""
    benchmark = covered_selection(run, benchmark)
    summary = write_summary(run, benchmark, summary_context(ctx), seed=ctx.seed)
    print(format_summary(summary))
    if every_sample_failed(run, benchmark, summary):
        raise RunFailedError(f"every one of the {len(benchmark)} samples failed; {run.summary} lists the failures")
    return summary


def format_summary(summary: dict) -> str:
    lines = [f"run {summary['run']['name']}  ({summary['benchmark']['n_samples']} samples, {summary['benchmark']['hash'][:19]})"]
    if summary["smoke"]:
        lines.append("SMOKE RUN: tiny random-weight models, the numbers below are meaningless")
    for key, cell in summary["metrics"].items():
        ci = cell["ci95"]
        value = "n/a" if cell["value"] is None else f"{cell['value']:6.2f}"
        lines.append(f"  {key:18s} {value}  n={cell['n']:<4d}" + (f" CI95 [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else ""))
    failures = summary["failures"]
    for stage, ids in [("generation", failures["generation"]), ("judge", failures["judge"]),
                       *((f"score {metric}", ids) for metric, ids in failures["scores"].items())]:
        if ids:
            lines.append(f"  failed ({stage}): {', '.join(ids)}")
    return "\n".join(lines)
