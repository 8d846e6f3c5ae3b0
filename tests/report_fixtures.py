"""Synthetic run directories with known per-sample results, shared by the report and leaderboard tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import yaml

from omiti2v.asm import ASMConfig
from omiti2v.asm.presets import NEWER_PRESETS, PRESETS
from omiti2v.data import load_benchmark
from omiti2v.runs import RunDir, append_jsonl
from omiti2v.summary import write_summary

SCHEDULE_AXES = {
    name: {"blocks": cfg["blocks"], "window": cfg["window"]}
    for name, cfg in ((p.stem, yaml.safe_load(p.read_text())) for p in (Path(__file__).resolve().parents[1] / "conf" / "schedule").glob("*.yaml"))
}


REAL_BLOCKS = 40  # Wan2.1-I2V-14B's block count: the preset's BGS list fits it whole


def recorded_asm(model: str, asm: dict, schedule: dict) -> dict | None:
    """The `resolved_asm` the generation stage records for this model, ASM and schedule (the same
    `ASMConfig.record`, installed in every block of a 40-block model that the schedule selects); None for a
    model without a preset."""
    if model not in PRESETS | NEWER_PRESETS:
        return None
    config = ASMConfig.from_hydra(model, asm, schedule, model)
    installed = [] if config.strategy == "none" else [b for b in range(REAL_BLOCKS) if config.block_selected(b)]
    return {**config.record(installed), "schedule": {k: schedule[k] for k in ("blocks", "window")}}


def make_run(root: Path, model: str, asm: str, schedule: str, seed: int, gamma_q=None, dirname: str | None = None,
             reverse: bool = False, profile: str | None = None, without_video: tuple[str, ...] = ()) -> tuple[Path, dict]:
    """A reported mini-benchmark run (summary.json, samples.csv) with seeded random verdicts and scores and the
    generation records of its videos; returns (path, truth).

    truth: {"correct": {(sample, question): bool}, "dynamic_degree": {sample: v}, "aesthetic_quality": {sample: v}}.
    A stale, superseded judge line is written first for every question to prove latest-record handling;
    `reverse` writes the logs in reverse sample order, so pairing must go by sample id, not position.
    `without_video`: the run is reported under `profile` with judge.missing_video=exclude, every other sample
    having a (placeholder) video file.
    """
    bench = load_benchmark("mini")
    rng = np.random.default_rng(seed)
    path = root / "mini" / model / (dirname or f"{asm}-{schedule}")
    run = RunDir(path)
    config = {
        "data": {"name": "mini", "source": "mini", "root": None, "hf_id": None, "revision": None,
                 "categories": None, "domains": None, "ids": None, "limit": None},
        "model": {"name": model},
        "asm": {"name": asm, "strategy": asm, "gamma_q": gamma_q, "gamma_k": None},
        "schedule": {"name": schedule, **SCHEDULE_AXES.get(schedule, {"blocks": "preset", "window": "early"})},
        "judge": {"name": "tiny", "mode": "both"},
        "seed": 42, "smoke": False,
    }
    run.config.write_text(yaml.safe_dump(config))
    resolved = recorded_asm(model, config["asm"], config["schedule"])
    append_jsonl(run.generation_log, [{"sample_id": s.id, "status": "ok", "error": None, "resolved_asm": resolved}
                                      for s in bench])
    truth: dict = {"correct": {}, "dynamic_degree": {}, "aesthetic_quality": {}}
    judge, scores = [], []
    for s in (list(bench)[::-1] if reverse else bench):
        for q in s.questions:
            ok = bool(rng.random() < 0.6)
            truth["correct"][(s.id, q.id)] = ok
            base = {"sample_id": s.id, "question_id": q.id, "category": q.category, "question": q.question,
                    "expected": q.expected_answer, "response": None, "p_yes": None, "mode": "parity",
                    "judge_model": "tiny", "error": None}
            judge.append({**base, "answer": "unknown", "correct": not ok})  # superseded below
            judge.append({**base, "answer": q.expected_answer if ok else "unknown", "correct": ok})
            judge.append({**base, "mode": "fast", "answer": "unknown", "correct": not ok})  # other mode: ignored
        dd = float(rng.random() < 0.5)
        aq = float(np.round(rng.uniform(0.3, 0.7), 4))
        truth["dynamic_degree"][s.id], truth["aesthetic_quality"][s.id] = dd, aq
        for metric, value in (("dynamic_degree", dd), ("aesthetic_quality", aq)):
            scores.append({"sample_id": s.id, "metric": metric, "value": value, "details": {}, "backend": "test",
                           "comparable": True, "error": None})
    append_jsonl(run.judge_log, judge)
    append_jsonl(run.scores_log, scores)
    context = {"run": {"name": f"mini/{model}/{asm}-{schedule}", "data": "mini", "model": model, "asm": asm,
                       "schedule": schedule}, "smoke": False, "profile": profile}
    if without_video:
        run.videos.mkdir()
        for sid in set(bench.ids) - set(without_video):
            run.video(sid).write_bytes(b"")
        context["missing_video"] = "exclude"
    write_summary(run, bench, context, seed=42)
    return path, truth


def per_sample_accuracy(truth: dict) -> dict[str, float]:
    acc: dict[str, list[bool]] = {}
    for (sid, _), ok in truth["correct"].items():
        acc.setdefault(sid, []).append(ok)
    return {sid: float(np.mean(v)) for sid, v in acc.items()}


def add_extra_judge(path: Path, judge: str, overall: float) -> None:
    """Another judge's semantic cells in a reported run's summary.json, as `omiti2v rejudge` records them: in
    parity `overall`, then +1, +2, +3 for modification, addition, deletion (CI ±5, n 12); in fast 99 everywhere."""
    def cell(value: float) -> dict:
        return {"value": value, "n": 12, "ci95": [value - 5, value + 5]}

    names = ("overall", "modification", "addition", "deletion")
    summary = json.loads((path / "summary.json").read_text())
    summary.setdefault("judges", {})[judge] = {"judge_model": f"hub/{judge}", "metrics": {
        "fast": {m: cell(99.0) for m in names}, "parity": {m: cell(overall + i) for i, m in enumerate(names)}}}
    (path / "summary.json").write_text(json.dumps(summary))
