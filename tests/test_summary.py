"""Run-directory logs and the summary: exact numbers from known per-sample results, schema checks."""

import json

import numpy as np
import pandas as pd
import pytest

from omiti2v.data import load_benchmark
from omiti2v.runs import RunDir, append_jsonl, atomic_write_json, read_jsonl, sample_seed
from omiti2v.stats import bootstrap_ci, mean_cell
from omiti2v.summary import (
    SAMPLE_COLUMNS,
    build_summary,
    read_sample_table,
    sample_table,
    validate_summary,
    write_summary,
)

CONTEXT = {
    "run": {"name": "mini/m/scalar-paper", "data": "mini", "model": "m", "asm": "scalar", "schedule": "paper"},
    "models": {"generator": "tiny:m", "judge": "tiny"},
    "seeds": {"base": 42},
}


def test_read_jsonl_skips_a_truncated_last_line_only(tmp_path):
    log = tmp_path / "x.jsonl"
    append_jsonl(log, [{"a": 1}, {"a": 2}])
    with open(log, "a") as f:
        f.write('{"a": 3, "b":')  # a writer killed mid-line
    assert [r["a"] for r in read_jsonl(log)] == [1, 2]
    log.write_text('{"a": 1}\nnot json\n{"a": 2}\n')
    with pytest.raises(ValueError, match="line 2 is not valid JSON"):
        list(read_jsonl(log))


def test_atomic_write_leaves_old_file_when_serialisation_fails(tmp_path):
    target = tmp_path / "s.json"
    atomic_write_json(target, {"ok": 1})

    class Boom:
        def __str__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        atomic_write_json(target, {"bad": Boom()})
    assert json.loads(target.read_text()) == {"ok": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"]


def test_sample_seed_is_stable_and_distinct():
    assert sample_seed(42, "sample_0") == sample_seed(42, "sample_0")
    seeds = {sample_seed(42, f"sample_{i}") for i in range(367)}
    assert len(seeds) == 367 and all(0 <= s < 2**31 for s in seeds)
    assert sample_seed(43, "sample_0") != sample_seed(42, "sample_0")


def judge_records(bench, correct_fn, mode="parity"):
    return [
        {"sample_id": s.id, "question_id": q.id, "category": q.category, "question": q.question,
         "expected": q.expected_answer, "answer": q.expected_answer if correct_fn(s, q) else "unknown",
         "correct": bool(correct_fn(s, q)), "response": None, "p_yes": None, "mode": mode,
         "judge_model": "tiny", "error": None}
        for s in bench for q in s.questions
    ]


def test_summary_numbers_from_known_per_sample_results(tmp_path):
    bench = load_benchmark("mini")
    run = RunDir(tmp_path / "run")
    # Correct exactly on the first question of each sample.
    append_jsonl(run.judge_log, judge_records(bench, lambda s, q: q.id == "q1"))
    # A later, resumed record supersedes the earlier one: mini_0 q2 becomes correct.
    q2 = next(q for q in bench["mini_0"].questions if q.id == "q2")
    append_jsonl(run.judge_log, [{**judge_records(bench, lambda s, q: True)[1], "question": q2.question}])
    dyn = {s.id: float(i % 4 == 0) for i, s in enumerate(bench)}
    append_jsonl(run.scores_log, [
        {"sample_id": sid, "metric": "dynamic_degree", "value": v, "details": {}, "backend": "raft", "comparable": True, "error": None}
        for sid, v in dyn.items()
    ] + [{"sample_id": "mini_11", "metric": "aesthetic_quality", "value": None, "details": {}, "backend": "clip", "comparable": True, "error": "decode"}]
      + [{"sample_id": s.id, "metric": "aesthetic_quality", "value": 0.5, "details": {}, "backend": "clip", "comparable": True, "error": None} for s in list(bench)[:11]])
    summary = build_summary(run, bench, CONTEXT, seed=0)
    validate_summary(summary)

    per_sample = {s.id: 1 / len(s.questions) for s in bench}
    per_sample["mini_0"] = 2 / 3
    m = summary["metrics"]
    assert m["overall"]["value"] == pytest.approx(100 * np.mean(list(per_sample.values())))
    for cat in ("modification", "addition", "deletion"):
        vals = [per_sample[s.id] for s in bench if s.main_category == cat]
        assert m[cat]["value"] == pytest.approx(100 * np.mean(vals)) and m[cat]["n"] == 4
    # Question categories are micro-averaged over questions.
    qs = [(q.category, q.id == "q1" or (s.id == "mini_0" and q.id == "q2")) for s in bench for q in s.questions]
    obj = [c for cat, c in qs if cat == "object_presence"]
    assert summary["breakdown"]["question_category"]["object_presence"]["value"] == pytest.approx(100 * np.mean(obj))
    assert summary["breakdown"]["question_category"]["object_presence"]["n"] == len(obj)
    assert m["dynamic_degree"] == {**mean_cell(list(dyn.values())), "value": pytest.approx(100 * 3 / 12)}
    assert m["aesthetic_quality"]["n"] == 11 and m["aesthetic_quality"]["value"] == pytest.approx(50.0)
    assert summary["failures"]["scores"] == {"dynamic_degree": [], "aesthetic_quality": ["mini_11"]}
    assert summary["benchmark"]["hash"] == bench.content_hash()


def test_unjudged_questions_count_as_failed_and_are_listed(tmp_path):
    bench = load_benchmark("mini")
    run = RunDir(tmp_path / "run")
    recs = [r for r in judge_records(bench, lambda s, q: True) if r["sample_id"] != "mini_3"]
    recs += [{**r, "correct": False, "answer": "unknown", "error": "video missing"}
             for r in judge_records(bench, lambda s, q: True) if r["sample_id"] == "mini_7"]
    append_jsonl(run.judge_log, recs)
    summary = build_summary(run, bench, CONTEXT)
    assert summary["failures"]["judge"] == ["mini_3", "mini_7"]
    assert summary["metrics"]["overall"]["value"] == pytest.approx(100 * 10 / 12)
    assert summary["metrics"]["overall"]["n"] == 12


def test_parity_fast_agreement(tmp_path):
    bench = load_benchmark("mini", limit=3)
    run = RunDir(tmp_path / "run")
    parity = judge_records(bench, lambda s, q: True)
    fast = judge_records(bench, lambda s, q: s.id != "mini_1", mode="fast")
    append_jsonl(run.judge_log, parity + fast)
    summary = build_summary(run, bench, CONTEXT)
    n = sum(len(s.questions) for s in bench)
    assert summary["judge_agreement"] == {"n": n, "agreement": pytest.approx(100 * (n - 2) / n)}
    assert summary["metrics"]["overall"]["value"] == pytest.approx(100.0)


def test_bootstrap_ci_is_seeded_and_brackets_the_mean():
    x = np.random.default_rng(1).random(50)
    lo, hi = bootstrap_ci(x, seed=3)
    assert (lo, hi) == bootstrap_ci(x, seed=3)
    assert lo < x.mean() < hi
    assert bootstrap_ci([0.4]) is None and bootstrap_ci([1.0, 1.0]) == (1.0, 1.0)


def test_schema_errors_name_the_field(tmp_path):
    bench = load_benchmark("mini", limit=2)
    run = RunDir(tmp_path / "run")
    summary = build_summary(run, bench, CONTEXT)
    summary["metrics"]["overall"] = {"value": 140.0, "n": 2, "ci95": None}
    with pytest.raises(ValueError, match=r"summary.json: field 'metrics.overall.value': 140.0 is greater than"):
        validate_summary(summary)


@pytest.mark.parametrize("policy", ["exclude", "wrong"])
def test_missing_video_is_excluded_or_wrong_and_an_undecodable_one_stays_in(tmp_path, policy):
    """Official qwen.py: no video file -> listed and out of every mean; a broken file -> 0 on every question."""
    bench = load_benchmark("mini")
    run = RunDir(tmp_path / "run")
    run.videos.mkdir(parents=True)
    for s in bench:
        if s.id != "mini_3":
            run.video(s.id).write_bytes(b"not a video" if s.id == "mini_5" else b"")
    recs = [r if r["sample_id"] not in ("mini_3", "mini_5") else {**r, "correct": False, "answer": "unknown", "error": "x"}
            for r in judge_records(bench, lambda s, q: True)]
    append_jsonl(run.judge_log, recs)
    summary = build_summary(run, bench, {**CONTEXT, "missing_video": policy})
    validate_summary(summary)
    m, missing = summary["metrics"], bench["mini_3"]
    left_out = 1 if policy == "exclude" else 0
    assert summary["missing_video"] == policy and summary["failures"]["judge"] == ["mini_3", "mini_5"]
    assert summary["failures"]["excluded"] == (["mini_3"] if policy == "exclude" else [])
    assert m["overall"]["n"] == 12 - left_out
    assert m["overall"]["value"] == pytest.approx(100 * 10 / (12 - left_out))  # mini_5 scores 0 and stays in
    assert m[missing.main_category]["n"] == 4 - left_out
    domain_n = sum(s.domain == missing.domain for s in bench) - left_out  # a domain left empty has no cell
    assert summary["breakdown"]["domain"].get(missing.domain, {"n": 0})["n"] == domain_n
    category = missing.questions[0].category
    in_category = [(s.id, q) for s in bench for q in s.questions if q.category == category]
    expected_n = len(in_category) - left_out * sum(sid == "mini_3" for sid, _ in in_category)
    assert summary["breakdown"]["question_category"][category]["n"] == expected_n


def test_parity_replies_are_reparsed_with_the_official_rule(tmp_path):
    """A record judged by an older parser ("unknown") reads with today's rule: step 3 gives "no"."""
    bench = load_benchmark("mini", limit=1)
    run = RunDir(tmp_path / "run")
    recs = judge_records(bench, lambda s, q: False)  # every answer "unknown", incorrect
    assert recs[1]["question_id"] == "q2" and recs[1]["expected"] == "no"
    recs[1] = {**recs[1], "response": "I do not see a kite, yes the line is there"}
    append_jsonl(run.judge_log, recs)
    summary = build_summary(run, bench, CONTEXT)
    assert summary["metrics"]["overall"]["value"] == pytest.approx(100 / 3)


def test_report_writes_samples_csv_that_reads_back_bit_for_bit(tmp_path):
    """samples.csv: one row per sample with every per-sample metric, equal to the frame the summary came from."""
    bench = load_benchmark("mini")
    run = RunDir(tmp_path / "run")
    append_jsonl(run.judge_log, judge_records(bench, lambda s, q: q.id != "q2"))  # thirds and halves: long floats
    append_jsonl(run.scores_log, [{"sample_id": s.id, "metric": "aesthetic_quality", "value": 0.1 + i / 7,
                                   "details": {}, "backend": "clip", "comparable": True, "error": None}
                                  for i, s in enumerate(bench) if s.id != "mini_4"])
    summary = write_summary(run, bench, CONTEXT)
    assert json.loads(run.summary.read_text()) == summary
    table = read_sample_table(run.samples)
    expected = sample_table(bench, list(read_jsonl(run.judge_log)), list(read_jsonl(run.scores_log)), "parity")
    pd.testing.assert_frame_equal(table, expected, check_exact=True)
    assert list(table.index) == bench.ids and list(table.columns) == list(SAMPLE_COLUMNS)
    assert np.isnan(table.loc["mini_4", "aesthetic_quality"]) and table["imaging_quality"].isna().all()
    assert table.loc["mini_0", "domain"] == bench["mini_0"].domain
    assert 100 * table["overall"].mean() == pytest.approx(summary["metrics"]["overall"]["value"])


def test_sample_ids_that_look_like_missing_values_stay_text(tmp_path):
    frame = pd.DataFrame({"main_category": ["addition", "deletion"], "domain": ["NA", "x"], "overall": [0.5, None]},
                         index=pd.Index(["NA", "007"], name="sample_id"))
    frame.to_csv(tmp_path / "samples.csv")
    back = read_sample_table(tmp_path / "samples.csv")
    assert list(back.index) == ["NA", "007"] and list(back["domain"]) == ["NA", "x"]
    assert np.isnan(back.loc["007", "overall"])


WAN_TEXT_1_2 = {"strategy": "scalar", "preset": "wan2.1", "sites": ["cross_image", "cross_text"],
                "logit_multipliers": {"cross_image": 1.2, "cross_text": 1.62}, "blocks": [0, 2],
                "window": [900.0, None], "preset_gamma": False, "schedule": {"blocks": "preset", "window": "early"}}


def test_summary_carries_the_asm_its_videos_were_made_with(tmp_path):
    bench = load_benchmark("mini", limit=3)
    run = RunDir(tmp_path / "run")
    append_jsonl(run.generation_log, [{"sample_id": "mini_0", "status": "failed", "error": "oom"}]
                 + [{"sample_id": s.id, "status": "ok", "error": None, "resolved_asm": WAN_TEXT_1_2} for s in bench])
    summary = build_summary(run, bench, CONTEXT)
    validate_summary(summary)
    assert summary["resolved_asm"] == WAN_TEXT_1_2 and summary["schema_version"] == "1.3"
    assert build_summary(RunDir(tmp_path / "submission"), bench, CONTEXT)["resolved_asm"] is None
    other = {**WAN_TEXT_1_2, "logit_multipliers": {"cross_image": 1.35, "cross_text": 1.8225}}
    append_jsonl(run.generation_log, [{"sample_id": "mini_1", "status": "ok", "error": None, "resolved_asm": other}])
    append_jsonl(run.generation_log, [{"sample_id": "mini_2", "status": "ok", "error": None}])  # before 1.2: no record
    with pytest.raises(ValueError, match=r"generation.jsonl: the videos were made with 2 different ASM settings"):
        build_summary(run, bench, CONTEXT)
