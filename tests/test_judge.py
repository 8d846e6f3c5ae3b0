"""The VQA judge on a tiny offline Qwen2.5-VL: protocol text, parsing rule, batching = one-at-a-time, the
stage's records, resume, failures, and the summary built from them."""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from judge_reference import alone_p_yes, alone_reply
from omegaconf import OmegaConf

from omiti2v.conf_files import group_options, load_group_config
from omiti2v.context import RunContext
from omiti2v.data import load_benchmark
from omiti2v.judge import (
    INSTRUCTION,
    JudgeSettings,
    JudgeWeightsError,
    SampleItem,
    VideoSpec,
    VqaJudge,
    load_judge_model,
    load_judge_video,
    parse_answer,
    question_text,
    run_judge,
)
from omiti2v.judge import video as judge_video
from omiti2v.judge.families import JUDGES
from omiti2v.judge.side_by_side import QuestionColumns
from omiti2v.runs import RunDir, read_jsonl
from omiti2v.summary import build_summary, judge_frame, vqa_metrics
from omiti2v.testing.tiny_judge import build_tiny_judge
from omiti2v.video import write_video

REPO = Path(__file__).resolve().parents[1]
SMALL = VideoSpec(fps=2, max_pixels=28 * 28 * 4)  # 2 fps, 56x56-ish frames: seconds on a CPU


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory) -> Path:
    return build_tiny_judge(tmp_path_factory.mktemp("judge-cache") / "tiny-qwen2.5-vl-judge")


@pytest.fixture(scope="module")
def judge(tiny_folder) -> VqaJudge:
    model, processor = load_judge_model(str(tiny_folder), dtype="float32", device_map=None, device="cpu")
    return VqaJudge(model, processor, max_new_tokens=6)


# --- protocol -------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("Yes.", "yes"),
        ("yes, but no sign of the car", "yes"),
        ("No, yes-like shapes appear but no dog", "no"),
        ("  NO. The house stays red.", "no"),
        ("The answer is no", "no"),
        ("I see yes written on the sign", "yes"),
        ("Not sure", "no"),  # the rule is literal: the text before the first comma starts with "no"
        ("Maybe, I cannot tell", "no"),  # "cannot" contains "no" and "yes" is absent
        ("Perhaps yes or maybe not", "yes"),  # both occur; "yes" is among the first five words
        ("It is unclear whether the object is there or gone, hard to say yes or not", "unknown"),
        ("", "unknown"),
        (None, "unknown"),
        ("The video shows a car.", "unknown"),
    ],
)
def test_parse_answer_follows_the_paper_rule(reply, expected):
    assert parse_answer(reply) == expected


def test_question_text_is_the_papers_wording():
    assert question_text("Is the car red?") == (
        "Question: Is the car red?\n\nPlease watch the video carefully and answer the question based solely on what "
        "you observe. Reply with 'yes' or 'no' followed by a brief explanation of your reasoning."
    )
    assert INSTRUCTION.endswith("reasoning.")


def test_fast_mode_reads_yes_no_without_leading_space(judge):
    tok = judge.tokenizer
    assert tok.convert_ids_to_tokens([judge.yes_id, judge.no_id]) == ["Yes", "No"]
    assert judge.yes_id != tok.encode(" Yes", add_special_tokens=False)[0]
    prefix, suffix = judge.split_prompt("Is it red?")
    assert prefix.endswith("<|vision_end|>") and suffix.endswith("<|im_start|>assistant\n")
    assert "Is it red?" in suffix and "<|video_pad|>" in prefix


# --- video sampling -------------------------------------------------------------------------------------

def test_video_sampling_matches_qwen_vl_utils(shared_videos):
    """Our single decode gives the frames, indices and token count of qwen-vl-utils' fetch_video (paper spec)."""
    from qwen_vl_utils import fetch_video

    path = shared_videos / "wan21_original_car.mp4"  # 81 frames, 16 fps, 768x512
    ours = load_judge_video(path, VideoSpec(metadata_fps=None))  # the true metadata: source indices
    (ref, meta) = fetch_video({"video": str(path), "fps": 8, "max_pixels": 360 * 420}, return_video_metadata=True)
    assert ours.frames.shape == ref.shape == (40, 3, 308, 476)
    assert list(ours.metadata["frames_indices"]) == list(meta["frames_indices"])
    assert torch.equal(ours.frames, ref)
    # the paper's protocol (fps 8, max_pixels 360*420) gives 3,740 video tokens for this video
    assert (40 // 2) * (308 // 28) * (476 // 28) == 3740


def test_small_max_pixels_lowers_min_pixels():
    assert VideoSpec(max_pixels=3136).pixel_range() == (3136, 3136)
    assert VideoSpec().pixel_range() == (128 * 28 * 28, 360 * 420)


# --- batching equals one at a time ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def real_items():
    videos = REPO.parent / "shared" / "videos"
    if not (videos / "wan21_original_car.mp4").exists():
        pytest.skip(f"real videos not found at {videos}")
    car = load_judge_video(videos / "wan21_original_car.mp4", SMALL)
    flowers = load_judge_video(videos / "framepack_original_flowers.mp4", SMALL)
    assert car.frames.shape[0] != flowers.frames.shape[0]  # different prefix lengths: padding is exercised
    return [
        SampleItem(car, ["Is there a car in the video?", "Is the car red at the end of the video?"]),
        SampleItem(flowers, ["Are there flowers?", "Is it raining?", "Does a dog jump over the fence in the video?"]),
    ]


def test_fast_batched_equals_one_at_a_time(judge, real_items):
    batched = judge.fast(real_items)
    assert [len(b) for b in batched] == [2, 3]
    for item, p_yes in zip(real_items, batched, strict=True):
        for question, p in zip(item.questions, p_yes, strict=True):
            assert 0.0 < p < 1.0
            assert p == pytest.approx(alone_p_yes(judge, item.video, question), abs=1e-5)
    # the shared prefix must not leak between rows: different questions give different probabilities
    assert len({round(p, 7) for ps in batched for p in ps}) == 5


def test_parity_batched_equals_one_at_a_time(judge, real_items):
    batched = judge.parity(real_items)
    for item, replies in zip(real_items, batched, strict=True):
        assert replies == [alone_reply(judge, item.video, q) for q in item.questions]



@pytest.fixture(scope="module")
def sharp_judge(judge) -> VqaJudge:
    """The tiny judge with 8x query/key weights. Random-init attention is nearly uniform, so wrong M-RoPE
    positions or a cache row of the wrong sample barely change its replies; sharpened, they do."""
    model = copy.deepcopy(judge.model)
    with torch.no_grad():
        for layer in model.model.language_model.layers:
            layer.self_attn.q_proj.weight.mul_(8.0)
            layer.self_attn.k_proj.weight.mul_(8.0)
    return VqaJudge(model, judge.processor, max_new_tokens=12)


@pytest.fixture(scope="module")
def uneven_items(real_items):
    """Questions of very different token lengths, so the suffix rows are padded against each other."""
    car, flowers = real_items[0].video, real_items[1].video
    return [
        SampleItem(car, ["Is it red?", "Does the car leave the road, turn left at the crossing, and stop next to the "
                                       "tree by the end of the video?"]),
        SampleItem(flowers, ["Are there flowers?", "Is it raining?", "Do the petals of the flowers fall to the ground "
                                                                     "while the wind blows?"]),
    ]


def test_parity_shares_the_prefix_and_equals_generating_alone(sharp_judge, uneven_items):
    """Parity runs the vision tower once per sample (not once per question) and still replies token for token
    what generate() gives for each question alone."""
    grids: list[int] = []

    def count(module, args, kwargs):
        grids.append(len(kwargs["grid_thw"] if "grid_thw" in kwargs else args[1]))

    hook = sharp_judge.model.model.visual.register_forward_pre_hook(count, with_kwargs=True)
    try:
        batched = sharp_judge.parity(uneven_items)
    finally:
        hook.remove()
    assert grids == [len(uneven_items)]  # one vision call for the batch, one video per sample

    alone = [[alone_reply(sharp_judge, item.video, q) for q in item.questions] for item in uneven_items]
    assert batched == alone
    assert len({r for rs in alone for r in rs}) == 5  # the questions lead to different replies here
    # one sample at a time gives the same replies as the batch of samples (prefix padding is harmless)
    assert [sharp_judge.parity([item])[0] for item in uneven_items] == batched


@pytest.fixture
def strict_judge(sharp_judge) -> VqaJudge:
    """The sharp judge with its own generation_config, for changing decoding settings."""
    model = copy.copy(sharp_judge.model)
    model.generation_config = copy.deepcopy(sharp_judge.model.generation_config)
    return VqaJudge(model, sharp_judge.processor, max_new_tokens=12)


def test_repetition_penalty_and_min_new_tokens_decode_as_generate(strict_judge, uneven_items):
    """A checkpoint's repetition_penalty (Qwen2.5-VL's generation_config sets 1.05) and min_new_tokens change
    greedy replies; side by side they change them as generate() does on each question's own prompt."""
    plain = strict_judge.parity(uneven_items)
    strict_judge.model.generation_config.repetition_penalty = 1.5
    strict_judge.model.generation_config.min_new_tokens = 10
    penalised = strict_judge.parity(uneven_items)
    assert penalised != plain
    assert penalised == [[alone_reply(strict_judge, item.video, q) for q in item.questions] for item in uneven_items]


def test_generation_settings_side_by_side_cannot_honour_are_refused_there_only(strict_judge, uneven_items):
    """Parity and fast refuse a generation_config field they do not apply; official mode's generate() applies it,
    as qwen.py's did."""
    strict_judge.model.generation_config.no_repeat_ngram_size = 3
    judge = VqaJudge(strict_judge.model, strict_judge.processor, max_new_tokens=12)
    for mode in (judge.parity, judge.fast):
        with pytest.raises(ValueError, match="no_repeat_ngram_size=3"):
            mode(uneven_items)
    item = uneven_items[0]
    assert judge.official([item]) == [[alone_reply(judge, item.video, q) for q in item.questions]]


def test_side_by_side_columns_see_the_prefix_and_their_own_question():
    """Two rows (the second's prefix left padded by one), three slots; row 1 has two questions only. Checked
    against the rule written out column by column."""
    prefix_mask = torch.tensor([[1, 1, 1], [0, 1, 1]])
    columns = QuestionColumns.after_prefix(prefix_mask, torch.tensor([10, 20]), slots=3)
    ids, positions, ends = columns.question_chunk([[[5, 6], [7], [8, 9, 4]], [[1], [2, 3]]], filler=0)
    assert ends.tolist() == [1, 3, 6]  # slot widths 2, 2, 3
    assert ids.tolist() == [[5, 6, 0, 7, 8, 9, 4], [0, 1, 2, 3, 0, 0, 0]]
    # every question starts where text after its prefix starts, as in its own prompt
    assert positions.tolist() == [[10, 11, 10, 10, 10, 11, 12], [20, 20, 20, 21, 20, 20, 20]]
    assert columns.asked.tolist() == [[True, True, True], [True, True, False]]
    assert columns.step().tolist() == [[12, 11, 13], [21, 22, 20]]
    # owners written out: P prefix, H hidden, . padding, digits the question
    layout = ["PPP" "00.1222" "012", "HPP" ".011..." "01."]
    mask = columns.mask(ids.shape[1] + 3)[:, 0]
    for r, row in enumerate(layout):
        for i, who in enumerate(row[3:], start=3):
            seen = [j for j, other in enumerate(row) if j <= i and (other == "P" or other == who)]
            assert mask[r, i - 3].nonzero().flatten().tolist() == seen, (r, i)
    # each question's own prompt, for the repetition penalty: the prefix and its own tokens, the rest the filler
    prompts = columns.prompt_tokens(100 + torch.arange(len(layout[0])).expand(2, -1), filler=0)
    for r, row in enumerate(layout):
        for j in range(3):
            assert prompts[r, j].tolist() == [100 + c if who in ("P", str(j)) else 0 for c, who in enumerate(row)]


def test_fast_on_sharp_model_equals_one_at_a_time(sharp_judge, uneven_items):
    batched = sharp_judge.fast(uneven_items)
    for item, p_yes in zip(uneven_items, batched, strict=True):
        for question, p in zip(item.questions, p_yes, strict=True):
            assert p == pytest.approx(alone_p_yes(sharp_judge, item.video, question), abs=1e-5)

def test_both_reads_fast_from_the_parity_pass_with_one_vision_call(sharp_judge, uneven_items):
    """judge.mode=both: one pass over the prefixes gives the parity replies and the fast P(yes) of each question."""
    grids: list[int] = []
    hook = sharp_judge.model.model.visual.register_forward_pre_hook(lambda m, a, k: grids.append(1), with_kwargs=True)
    try:
        both = sharp_judge.both(uneven_items)
    finally:
        hook.remove()
    assert grids == [1]
    assert [replies for replies, _ in both] == sharp_judge.parity(uneven_items)
    for (_, p_yes), fast in zip(both, sharp_judge.fast(uneven_items), strict=True):
        assert p_yes == pytest.approx(fast, abs=1e-5)
    assert len({round(p, 6) for _, ps in both for p in ps}) == 5  # each question its own probability


# --- the stage ------------------------------------------------------------------------------------------

def write_mini_videos(run: RunDir, benchmark) -> None:
    """Short clips (8 frames, 8 fps) panning over each mini image: mini-set sized, seconds to judge."""
    for sample in benchmark:
        image = np.asarray(sample.load_image().convert("RGB").resize((80, 48)))
        frames = np.stack([np.roll(image, 4 * t, axis=1) for t in range(8)])
        write_video(run.video(sample.id), frames, fps=8)


def tiny_cfg(mode: str = "both"):
    judge_cfg = OmegaConf.load(REPO / "conf" / "judge" / "tiny.yaml")
    judge_cfg.mode = mode
    return OmegaConf.create({"judge": judge_cfg, "device": "cpu", "seed": 0})


def test_stage_records_resume_and_failures(tmp_path, tiny_folder, monkeypatch, caplog):
    monkeypatch.setenv("OMITI2V_CACHE", str(tiny_folder.parent))
    decodes: list[str] = []
    real_read = judge_video.read_video
    monkeypatch.setattr(judge_video, "read_video", lambda path, *a, **k: decodes.append(Path(path).stem) or real_read(path, *a, **k))

    bench = load_benchmark("mini")
    run = RunDir(tmp_path / "run")
    write_mini_videos(run, bench)
    missing, corrupt = bench.ids[0], bench.ids[1]
    run.video(missing).unlink()
    run.video(corrupt).write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video")
    n_questions = sum(len(s.questions) for s in bench)

    with caplog.at_level(logging.INFO, logger="omiti2v.judge.stage"):
        run_judge(RunContext.from_config(tiny_cfg("both")), run, bench)
    recs = list(read_jsonl(run.judge_log))
    assert len(recs) == 2 * n_questions
    batch_logs = [r.getMessage() for r in caplog.records if r.getMessage().startswith("judge batch ")]
    assert batch_logs and all("decode" in m and "CPU" in m and "model" in m for m in batch_logs)
    # every readable video decoded once, shared by both modes and all questions; the broken ones fail at the header
    assert sorted(decodes) == sorted(set(bench.ids) - {missing, corrupt})
    keys = {(r["sample_id"], r["question_id"], r["mode"]) for r in recs}
    assert len(keys) == len(recs)
    for r in recs:
        assert r["judge_model"] == "tiny"
        if r["sample_id"] in (missing, corrupt):
            assert r["error"] and r["correct"] is False and r["answer"] == "unknown"
            assert str(run.video(r["sample_id"])) in r["error"]
            continue
        assert r["error"] is None
        assert r["correct"] == (r["answer"] == r["expected"])
        if r["mode"] == "fast":
            assert 0.0 <= r["p_yes"] <= 1.0 and r["answer"] == ("yes" if r["p_yes"] >= 0.5 else "no")
        else:
            assert isinstance(r["response"], str) and r["answer"] == parse_answer(r["response"])

    summary = build_summary(run, bench, {"run": {"name": "t"}, "smoke": True})
    assert summary["failures"]["judge"] == sorted([missing, corrupt])
    assert summary["judge_agreement"]["n"] == n_questions - sum(len(s.questions) for s in bench if s.id in (missing, corrupt))

    # resume: nothing left to do except the failed samples, which are retried (and fail again)
    decodes.clear()
    run_judge(RunContext.from_config(tiny_cfg("both")), run, bench)
    assert decodes == []
    again = list(read_jsonl(run.judge_log))[len(recs):]
    assert {r["sample_id"] for r in again} == {missing, corrupt} and all(r["error"] for r in again)

    # a question lost from the log (a killed stage) is the only one judged on the next run
    lost = next(r for r in recs if r["error"] is None and r["mode"] == "parity")
    kept = [r for r in read_jsonl(run.judge_log) if not (r["sample_id"] == lost["sample_id"] and r["question_id"] == lost["question_id"] and r["mode"] == "parity")]
    run.judge_log.write_text("".join(json.dumps(r) + "\n" for r in kept))
    decodes.clear()
    run_judge(RunContext.from_config(tiny_cfg("parity")), run, bench)
    new = list(read_jsonl(run.judge_log))[len(kept):]
    ok = [r for r in new if r["error"] is None]
    assert [(r["sample_id"], r["question_id"], r["mode"]) for r in ok] == [(lost["sample_id"], lost["question_id"], "parity")]
    assert ok[0]["response"] == lost["response"]  # deterministic: the same reply as the first time
    assert decodes == [lost["sample_id"]]


def test_summary_from_judge_records_hand_computed(tmp_path):
    """Macro over samples, micro over question categories, failures listed: numbers checked by hand."""
    from omiti2v.judge.stage import record

    bench = load_benchmark("mini")
    run = RunDir(tmp_path)
    s0, s1 = list(bench)[:2]
    # s0: every answer correct; s1: first question wrong, the rest right; others: never judged (count as wrong)
    recs = [record(s0, q, "fast", "m", p_yes=1.0 if q.expected_answer == "yes" else 0.0) for q in s0.questions]
    recs += [record(s1, q, "fast", "m", p_yes=0.0 if (i == 0) == (q.expected_answer == "yes") else 1.0)
             for i, q in enumerate(s1.questions)]
    run.judge_log.write_text("".join(json.dumps(r) + "\n" for r in recs))
    frame = judge_frame(run, bench, "fast")
    metrics, breakdown = vqa_metrics(frame, seed=0)
    s1_acc = (len(s1.questions) - 1) / len(s1.questions)
    assert metrics["overall"]["value"] == pytest.approx(100 * (1.0 + s1_acc) / len(bench))
    assert metrics["overall"]["n"] == len(bench)
    cat = s1.questions[0].category
    in_cat = [q for s in bench for q in s.questions if q.category == cat]
    right = sum(q.category == cat for q in s0.questions) + sum(q.category == cat for q in s1.questions[1:])
    assert breakdown["question_category"][cat]["value"] == pytest.approx(100 * right / len(in_cat))


# --- configuration and loading --------------------------------------------------------------------------

def test_judge_configs_follow_the_protocol():
    for name in group_options("judge"):
        cfg = load_group_config("judge", name)
        settings = JudgeSettings.from_config(cfg)
        assert settings.name == cfg.name and settings.modes
        assert settings.batch_samples == "auto"
        # the paper's metadata fps; Qwen3-VL reads timestamps as text, so it is told the true fps; InternVL has no
        # temporal positions
        assert settings.video.metadata_fps == (2.0 if JUDGES.lookup(cfg.name).family == "qwen2.5-vl" else None)
        if not cfg.name.startswith("tiny"):
            assert (settings.video.fps, settings.video.max_pixels, settings.max_new_tokens) == (8.0, 151200, 128)
            assert settings.video.min_pixels is None  # qwen-vl-utils' default, as the official run
    bad = OmegaConf.create({"name": "x", "model": "y", "mode": "greedy"})
    with pytest.raises(ValueError, match="judge.mode"):
        JudgeSettings.from_config(bad)
    with pytest.raises(ValueError, match="judge.batch_samples"):
        JudgeSettings.from_config(OmegaConf.create({"name": "x", "model": "y", "mode": "fast", "batch_samples": 0}))
    true_fps = JudgeSettings.from_config(OmegaConf.create({"name": "x", "model": "y", "mode": "fast", "metadata_fps": None}))
    assert true_fps.video.metadata_fps is None


@pytest.mark.parametrize("model_id", ["/nonexistent/qwen-judge", "Qwen/Qwen2.5-VL-7B-Instruct"])
def test_missing_weights_give_one_clear_error(model_id, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(JudgeWeightsError, match=r"judge\.model=.*download"):
        load_judge_model(model_id, dtype="float32", device_map=None)
