"""judge.mode=official on a tiny offline Qwen2.5-VL (float32, CPU): every reply equals a plain loop written here
the way the paper's qwen.py asks its questions (qwen-vl-utils reads the video, one processor call and one
generate per question), whatever the batch planner is given; a video's vision tower runs once for its questions
and hands back exactly what recomputing it gives."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch

from omiti2v.data import load_benchmark
from omiti2v.judge import (
    JudgeSettings,
    SampleItem,
    VideoSpec,
    VqaJudge,
    batching,
    judge_samples,
    load_judge_model,
    load_judge_video,
    parse_answer,
)
from omiti2v.judge import stage as judge_stage
from omiti2v.judge.official import shared_video_features
from omiti2v.runs import RunDir, read_jsonl
from omiti2v.testing.tiny_judge import build_tiny_judge
from omiti2v.video import write_video

SMALL = VideoSpec(fps=2, max_pixels=28 * 28 * 4)
NEW_TOKENS = 10


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return build_tiny_judge(tmp_path_factory.mktemp("judge-cache") / "tiny-qwen2.5-vl-judge")


def sharpen(model) -> None:
    """8x query/key weights: random-init attention is near uniform, so a wrong input barely moves the replies of
    the tiny model; sharpened, it does."""
    with torch.no_grad():
        for layer in model.model.language_model.layers:
            layer.self_attn.q_proj.weight.mul_(8.0)
            layer.self_attn.k_proj.weight.mul_(8.0)


@pytest.fixture(scope="module")
def judge(folder) -> VqaJudge:
    model, processor = load_judge_model(str(folder), dtype="float32", device_map=None, device="cpu")
    sharpen(model)
    return VqaJudge(model, processor, max_new_tokens=NEW_TOKENS)


@pytest.fixture(scope="module")
def plain_model(folder):
    """The same checkpoint loaded with transformers alone (stock vision attention), sharpened the same way."""
    from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration

    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(str(folder), dtype=torch.float32).eval()
    sharpen(model)
    return model, AutoProcessor.from_pretrained(str(folder))


def plain_replies(model, processor, path, questions, spec: VideoSpec = SMALL) -> list[str]:
    """qwen.py's loop: per question, messages -> chat template -> qwen-vl-utils reads the video -> processor ->
    generate(do_sample=False) -> decode the new tokens. The processor is told fps 2.0 for the sampled clip, as
    transformers 4.50 assumed when qwen.py passed none."""
    from qwen_vl_utils import process_vision_info

    low, high = spec.pixel_range()
    replies = []
    for question in questions:
        messages = [{"role": "user", "content": [
            {"type": "video", "video": str(path), "fps": spec.fps, "max_pixels": high, "min_pixels": low},
            {"type": "text", "text": f"Question: {question}\n\nPlease watch the video carefully and answer the question "
                                     "based solely on what you observe. Reply with 'yes' or 'no' followed by a brief "
                                     "explanation of your reasoning."}]}]
        text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        _, videos, _ = process_vision_info(messages, return_video_kwargs=True, return_video_metadata=True)
        frames = videos[0][0]
        metadata = {"fps": 2.0, "frames_indices": list(range(len(frames))), "total_num_frames": len(frames)}
        inputs = processor(text=[text], videos=[frames], video_metadata=[metadata], do_sample_frames=False,
                           padding=True, return_tensors="pt")
        with torch.no_grad():
            out = model.generate(**inputs, max_new_tokens=NEW_TOKENS, do_sample=False)
        replies.append(processor.batch_decode(out[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True,
                                              clean_up_tokenization_spaces=False)[0])
    return replies


def clip(path, seed: int, frames: int = 12):
    """A small moving clip, different per seed."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (48, 80, 3), dtype=np.uint8)
    return write_video(path, np.stack([np.roll(base, 5 * t, axis=1) for t in range(frames)]), fps=8)


QUESTIONS = ["Is it red?", "Does the car leave the road, turn left at the crossing, and stop by the tree?",
             "Are there flowers?"]


@contextlib.contextmanager
def calls_of(module):
    """The calls of `module` within the block (one entry each)."""
    calls: list[int] = []
    hook = module.register_forward_pre_hook(lambda *args: calls.append(1))
    try:
        yield calls
    finally:
        hook.remove()


def test_official_replies_equal_a_plain_generate_loop_with_one_vision_call(judge, plain_model, tmp_path):
    paths = [clip(tmp_path / f"v{i}.mp4", i, frames=12 + 4 * i) for i in range(2)]
    items = [SampleItem(load_judge_video(p, SMALL), QUESTIONS) for p in paths]
    with calls_of(judge.model.model.visual) as towers:
        official = judge.official(items)
    assert len(towers) == 2  # one vision-tower call per video, not one per question
    plain = [plain_replies(*plain_model, p, QUESTIONS) for p in paths]
    assert official == plain
    assert len({r for rs in plain for r in rs}) >= 4  # the replies depend on the video and the question
    # the harness's batched window attention is back after an official call
    assert "forward" in vars(next(m for m in judge.model.modules() if type(m).__name__ == "Qwen2_5_VLVisionAttention"))


def test_the_vision_memo_hands_back_exactly_what_recomputing_gives(judge, tmp_path):
    """Equal pixels get the first output (bitwise what a fresh call computes); other pixels are computed anew."""
    enc = [judge.encode_prefixes([load_judge_video(clip(tmp_path / f"m{i}.mp4", 10 + i), SMALL)]) for i in range(2)]
    base = judge.model.model

    def features(e):
        out = base.get_video_features(e["pixel_values_videos"].clone(), e["video_grid_thw"], return_dict=True)
        return out.pooler_output[0]

    with torch.no_grad():
        fresh = [features(e) for e in enc]
        with shared_video_features(judge.model):
            first, again, other = features(enc[0]), features(enc[0]), features(enc[1])
            assert again is first  # handed back, not recomputed
        assert "get_video_features" not in vars(base)
    assert torch.equal(first, fresh[0]) and torch.equal(again, fresh[0]) and torch.equal(other, fresh[1])
    assert not torch.equal(fresh[0][: len(fresh[1])], fresh[1][: len(fresh[0])])


def write_mini_videos(run: RunDir, benchmark) -> None:
    for i, sample in enumerate(benchmark):
        clip(run.video(sample.id), 100 + i, frames=8 + 2 * (i % 3))


@pytest.mark.parametrize("free_gb", [1, 100])
def test_official_stage_gives_the_plain_loops_replies_whatever_the_free_memory(judge, plain_model, tmp_path, free_gb,
                                                                                 monkeypatch):
    """The stage in official mode (background decoding and input building, per-sample records) on the mini set,
    on a machine with 1 GB and with 100 GB of free memory: the replies are the plain loop's, question by question,
    and the batch planner is never asked (parity's batches follow it)."""
    bench = load_benchmark("mini")
    monkeypatch.setattr(batching, "free_memory_bytes", lambda model: int(free_gb * 1e9))
    planned = []
    monkeypatch.setattr(judge_stage, "planner_for", lambda model: planned.append(1) or batching.planner_for(model))
    settings = JudgeSettings(name="tiny", model="tiny", modes=("official",), video=SMALL, max_new_tokens=NEW_TOKENS,
                             decode_workers=2)
    run = RunDir(tmp_path / "run")
    write_mini_videos(run, bench)
    judge_samples(judge, settings, run, list(bench), "tiny")
    records = list(read_jsonl(run.judge_log))
    assert len(records) == sum(len(s.questions) for s in bench) and {r["mode"] for r in records} == {"official"}
    assert planned == []
    got = {(r["sample_id"], r["question_id"]): r["response"] for r in records}
    for s in bench:
        expected = plain_replies(*plain_model, run.video(s.id), [q.question for q in s.questions])
        assert [got[(s.id, str(q.id))] for q in s.questions] == expected, s.id
        assert all(r["answer"] == parse_answer(r["response"]) for r in records if r["sample_id"] == s.id)
