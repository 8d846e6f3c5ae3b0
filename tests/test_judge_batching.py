"""The judge's memory plan, OOM split-and-retry, background decoding and the paper's processor inputs
(temporal positions, message format, greedy decoding), on the tiny offline judge and the public shapes of every registered checkpoint."""

from __future__ import annotations

import logging

import pytest
import torch

from omiti2v.compat.transformers import kv_cache_field
from omiti2v.judge import SampleItem, VideoSpec, VqaJudge, load_judge_model, load_judge_video
from omiti2v.judge import video as judge_video
from omiti2v.judge.batching import BatchPlanner, MemoryCosts, RowTokens, fixed_plan, split_on_oom
from omiti2v.judge.public import PUBLIC_SHAPES, public_config
from omiti2v.judge.stage import judge_batch
from omiti2v.judge.video import plan_judge_video
from omiti2v.testing.tiny_judge import build_tiny_judge, build_tiny_tokenizer
from omiti2v.testing.tiny_judge_internvl import NAMED_TOKENS

SMALL = VideoSpec(fps=2, max_pixels=28 * 28 * 4)


@pytest.fixture(scope="module")
def judge(tmp_path_factory) -> VqaJudge:
    folder = build_tiny_judge(tmp_path_factory.mktemp("judge-cache") / "tiny-qwen2.5-vl-judge")
    model, processor = load_judge_model(str(folder), dtype="float32", device_map=None, device="cpu")
    return VqaJudge(model, processor, max_new_tokens=5)


# --- the memory plan ------------------------------------------------------------------------------------

def test_memory_costs_of_the_public_shapes():
    tok = build_tiny_tokenizer()
    big = MemoryCosts.of_config(public_config("qwen2.5-vl-32b", tok), torch.bfloat16)
    assert big.kv_per_token == 64 * 8 * 128 * 2 * 2 == 262144  # layers x KV heads x head dim x (K, V) x bf16
    assert big.activation_per_token == (3 * 27648 + 6 * 5120) * 2  # the LLM layer outweighs the vision tower's
    assert big.mask_per_entry == 3
    small = MemoryCosts.of_config(public_config("qwen2.5-vl-7b", tok), torch.bfloat16)
    assert small.kv_per_token == 28 * 4 * 128 * 2 * 2 == 57344
    assert small.activation_per_token == (3 * 18944 + 6 * 3584) * 2
    qwen3 = MemoryCosts.of_config(public_config("qwen3-vl-8b", tok), torch.bfloat16)
    assert qwen3.kv_per_token == 36 * 8 * 128 * 2 * 2
    # InternVL: 4 InternViT patches per LLM token (pixel shuffle), and the 6B tower's layer outweighs Qwen3-32B's
    internvl = MemoryCosts.of_config(public_config("internvl3.5-38b", build_tiny_tokenizer(NAMED_TOKENS)), torch.bfloat16)
    assert internvl.kv_per_token == 64 * 8 * 128 * 2 * 2
    assert internvl.activation_per_token == 4 * (3 * 12800 + 6 * 3200) * 2 > (3 * 25600 + 6 * 5120) * 2


def test_public_shapes_build_every_family():
    """Each table entry builds its family's config class with the published numbers (no weights)."""
    from omiti2v.judge.families import JUDGES

    for name, (text, vision) in PUBLIC_SHAPES.items():
        entry = JUDGES.lookup(name)
        tok = build_tiny_tokenizer(NAMED_TOKENS) if entry.family == "internvl" else build_tiny_tokenizer()
        config = public_config(name, tok)
        assert type(config).__name__ == entry.model_class.replace("ForConditionalGeneration", "Config")
        assert (config.text_config.hidden_size, config.text_config.num_hidden_layers) == (
            text["hidden_size"], text["num_hidden_layers"])
        assert config.vision_config.hidden_size == vision["hidden_size"]
    assert set(PUBLIC_SHAPES) == {n for n, e in JUDGES.items() if e.hub_id} - {"qwen2.5-vl-72b"}
    with pytest.raises(ValueError, match="no published shapes for judge 'tiny'"):
        public_config("tiny", build_tiny_tokenizer())


def test_planner_packs_by_hand_computed_bytes():
    costs = MemoryCosts(kv_per_token=262144, activation_per_token=227328, mask_per_entry=3)
    planner = BatchPlanner(costs, budget_bytes=5_000_000_000)
    rows = [RowTokens(3760, 200), RowTokens(4320, 160), RowTokens(2000, 300), RowTokens(4000, 100)]
    # one row of width W costs W * (262144 + 227328) + W^2 * 3 bytes; every row is as wide as the batch's widest
    assert planner.batch_bytes(rows[:1]) == 3960 * 489472 + 3960**2 * 3 == 1_985_353_920
    assert planner.batch_bytes(rows[:2]) == 2 * (4520 * 489472 + 4520**2 * 3) == 4_547_409_280
    assert planner.batch_bytes(rows[:3]) == 3 * (4620 * 489472 + 4620**2 * 3) == 6_976_181_520  # over 5e9
    assert planner.batch_bytes(rows[2:]) == 2 * (4300 * 489472 + 4300**2 * 3) == 4_320_399_200
    assert planner.plan(rows) == [[0, 1], [2, 3]]
    assert BatchPlanner(costs, budget_bytes=1).plan(rows) == [[0], [1], [2], [3]]  # too big: alone, never dropped
    assert BatchPlanner(costs, budget_bytes=10**15, max_samples=3).plan(rows) == [[0, 1, 2], [3]]
    assert fixed_plan(5, 2) == [[0, 1], [2, 3], [4]]


# --- out of memory: split and retry ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def items(shared_videos_module):
    car = load_judge_video(shared_videos_module / "wan21_original_car.mp4", SMALL)
    flowers = load_judge_video(shared_videos_module / "framepack_original_flowers.mp4", SMALL)
    kite = load_judge_video(shared_videos_module / "framepack_f1_original_kite.mp4", SMALL)
    return [SampleItem(car, ["Is there a car?", "Is it red?"]), SampleItem(flowers, ["Are there flowers?"]),
            SampleItem(kite, ["Is there a kite?", "Is the sky blue?", "Is it night?"])]


@pytest.fixture(scope="module")
def shared_videos_module():
    from conftest import SHARED_VIDEOS

    if not (SHARED_VIDEOS / "wan21_original_car.mp4").exists():
        pytest.skip(f"real videos not found at {SHARED_VIDEOS}")
    return SHARED_VIDEOS


def oom_when(judge: VqaJudge, too_big, monkeypatch) -> list[int]:
    """Make judge.parity raise CUDA out of memory whenever too_big(items); returns the batch sizes it was given."""
    real, sizes = judge.parity, []

    def parity(items):
        sizes.append(len(items))
        if too_big(items):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (injected)")
        return real(items)

    monkeypatch.setattr(judge, "parity", parity)
    return sizes


def test_oom_splits_the_batch_and_retries(judge, items, monkeypatch, caplog):
    expected = [judge.parity([it])[0] for it in items]
    sizes = oom_when(judge, lambda part: len(part) > 1, monkeypatch)
    with caplog.at_level(logging.WARNING, logger="omiti2v.judge.batching"):
        replies = judge_batch(judge, "parity", items)
    assert replies == expected
    assert sizes == [3, 1, 2, 1, 1]  # 3 fails -> 1 + 2; the 2 fails -> 1 + 1
    messages = [r.getMessage() for r in caplog.records if r.name == "omiti2v.judge.batching"]
    assert messages == ["judge: CUDA out of memory on a parity batch of 3 samples; retrying as 1 + 2",
                        "judge: CUDA out of memory on a parity batch of 2 samples; retrying as 1 + 1"]


def test_a_sample_too_big_alone_fails_alone(judge, items, monkeypatch):
    flowers = items[1].video
    oom_when(judge, lambda part: any(it.video is flowers for it in part), monkeypatch)
    replies = judge_batch(judge, "parity", items)
    assert isinstance(replies[1], RuntimeError) and "out of memory" in str(replies[1])
    assert replies[0] == judge.parity([items[0]])[0] and replies[2] == judge.parity([items[2]])[0]


def test_split_on_oom_passes_other_errors_through():
    def broken(part):
        raise ValueError("not a memory problem")

    with pytest.raises(ValueError):
        split_on_oom(broken, [1, 2])


# --- video input as the official run gave it --------------------------------------------------------------

def test_paper_metadata_gives_second_per_grid_ts_one(judge, shared_videos):
    """The official qwen.py passed no fps, so transformers 4.50 assumed 2.0: second_per_grid_ts = 2 / 2.0 = 1.0,
    i.e. temporal M-RoPE positions 2 apart per frame pair (tokens_per_second 2). null gives the true rate."""
    path = shared_videos / "wan21_original_car.mp4"  # 81 frames at 16 fps, 40 sampled at fps 8
    paper = judge.encode_prefixes([load_judge_video(path, VideoSpec())])
    assert paper["second_per_grid_ts"].tolist() == [1.0]
    positions = judge._prefix_positions(paper).ids
    video = paper["input_ids"][0] == judge.processor.video_token_id
    temporal = positions[0, 0, video].unique()
    assert len(temporal) == 20 and torch.equal(temporal.diff(), torch.full((19,), 2))

    true = judge.encode_prefixes([load_judge_video(path, VideoSpec(metadata_fps=None))])
    assert true["second_per_grid_ts"].tolist() == pytest.approx([2 / (40 / 81 * 16)])


def test_only_the_sampled_frames_are_decoded(shared_videos, monkeypatch):
    asked = []
    real = judge_video.read_video
    monkeypatch.setattr(judge_video, "read_video", lambda path, indices=None: asked.append(indices) or real(path, indices))
    path = shared_videos / "framepack_original_flowers.mp4"  # 181 frames at 30 fps
    video = load_judge_video(path, VideoSpec())
    plan = plan_judge_video(path, VideoSpec())
    assert asked == [plan.indices] and len(plan.indices) == 48 == video.frames.shape[0]
    assert plan.total_frames == 181


def test_official_message_format_and_greedy_decoding(judge, items, monkeypatch):
    """One user turn [video, text], no system message (the template's default system prompt), greedy decoding
    up to max_new_tokens."""
    from omiti2v.judge import question_text

    assert judge.chat_text("Is it red?") == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
        "<|vision_start|><|video_pad|><|vision_end|>" + question_text("Is it red?") + "<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    calls = []
    hook = judge.model.register_forward_pre_hook(lambda m, args, kw: calls.append(kw), with_kwargs=True)
    try:
        replies = judge.parity(items[:1])[0]
    finally:
        hook.remove()
    # the prefill, one chunk holding both questions, then one forward per new token for both at once
    assert len(replies) == 2 and 3 <= len(calls) <= 2 + judge.max_new_tokens - 1
    assert calls[1]["input_ids"].shape[0] == 1 and all(c["input_ids"].shape == (1, 2) for c in calls[2:])
    assert all(c[kv_cache_field()] is calls[1][kv_cache_field()] for c in calls[2:])  # the prefill's cache
