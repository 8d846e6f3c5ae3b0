"""Judge registry: every family's tiny model answers the paper prompt through the shared VqaJudge path offline,
fast-mode P(yes) and parity replies equal asking each question alone (float32), and every judge config names a
registry entry whose checkpoint it loads."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import pytest
import torch
from judge_reference import alone_p_yes, alone_reply

from omiti2v.conf_files import group_options, load_group_config
from omiti2v.judge import SampleItem, VideoSpec, VqaJudge, load_judge_model, load_judge_video, question_text
from omiti2v.judge.families import JUDGES
from omiti2v.judge.stage import JudgeSettings
from omiti2v.judge.video import plan_judge_video

REPO = Path(__file__).resolve().parents[1]
TINY = {"qwen2.5-vl": "tiny", "qwen3-vl": "tiny-qwen3-vl", "internvl": "tiny-internvl"}
# each family's own processor expands the video: Qwen3-VL with timestamps between frames, InternVL with one
# "FrameN: <img>...</img>" tile per frame
PROCESSORS = {"qwen2.5-vl": "Qwen2_5_VLProcessor", "qwen3-vl": "Qwen3VLProcessor", "internvl": "InternVLProcessor"}


def sharpen_attention(model, factor: float = 8.0) -> None:
    """Scale every LLM layer's query and key by `factor`: after their RMSNorm where the family has one (Qwen3's
    q_norm/k_norm would undo a scaled projection), else in the projection."""
    with torch.no_grad():
        for layer in model.model.language_model.layers:
            attn = layer.self_attn
            for proj, norm in (("q_proj", "q_norm"), ("k_proj", "k_norm")):
                scaled = getattr(attn, norm, None) or getattr(attn, proj)
                scaled.weight.mul_(factor)


@pytest.fixture(scope="module", params=sorted(TINY))
def family_judge(request, tmp_path_factory) -> tuple[str, VqaJudge, VideoSpec]:
    """The family's tiny judge, attention sharpened (random-init attention is nearly uniform, so wrong positions
    or a leaked question would barely change its outputs; sharpened, they do)."""
    entry = JUDGES.lookup(TINY[request.param])
    folder = entry.build_tiny(tmp_path_factory.mktemp("judges") / entry.name)
    model, processor = load_judge_model(str(folder), dtype="float32", device_map=None, device="cpu",
                                        model_class=entry.model_class)
    model = copy.deepcopy(model)
    sharpen_attention(model)
    spec = entry.video_spec(VideoSpec(fps=2, metadata_fps=None), processor)
    spec = dataclasses.replace(spec, max_pixels=spec.merged_patch**2 * 4)  # 2x2 LLM tokens a frame
    return request.param, VqaJudge(model, processor, max_new_tokens=8), spec


@pytest.fixture(scope="module")
def items(family_judge) -> list[SampleItem]:
    _, _, spec = family_judge
    shared_videos = REPO.parent / "shared" / "videos"
    if not (shared_videos / "wan21_original_car.mp4").exists():
        pytest.skip(f"real videos not found at {shared_videos}")
    car = load_judge_video(shared_videos / "wan21_original_car.mp4", spec)
    flowers = load_judge_video(shared_videos / "framepack_original_flowers.mp4", spec)
    return [SampleItem(car, ["Is it red?", "Does the car turn left at the crossing and stop by the tree?"]),
            SampleItem(flowers, ["Are there flowers?", "Is it raining?", "Do the petals fall while the wind blows?"])]


def test_family_prompt_is_the_papers(family_judge):
    family, judge, _ = family_judge
    text = judge.chat_text("Is there a car?")
    assert question_text("Is there a car?") in text and text.count(judge.processor.video_token) == 1
    assert type(judge.processor).__name__ == PROCESSORS[family]
    prefix, suffix = judge.split_prompt("Is there a car?")
    assert prefix + suffix == text and prefix.endswith(judge.family.video_end_marker(judge.processor))
    assert question_text("Is there a car?") in suffix and judge.processor.video_token in prefix


def test_family_plan_sizes_the_prefix_before_decoding(family_judge, shared_videos):
    """The memory plan sizes a sample from the file header alone; the processor then makes that many prefix
    tokens (Qwen3-VL: not counting the timestamp text between frame pairs, which the plan leaves to its margin)."""
    family, judge, spec = family_judge
    for name in ("wan21_original_car.mp4", "framepack_original_flowers.mp4"):
        plan = plan_judge_video(shared_videos / name, spec)
        width = judge.encode_prefixes([load_judge_video(shared_videos / name, spec, plan)])["input_ids"].shape[1]
        assert judge.prefix_length(plan) <= width if family == "qwen3-vl" else judge.prefix_length(plan) == width


def test_family_fast_equals_asking_each_question_alone(family_judge, items):
    _, judge, _ = family_judge
    batched = judge.fast(items)
    assert [len(b) for b in batched] == [2, 3]
    for item, p_yes in zip(items, batched, strict=True):
        for question, p in zip(item.questions, p_yes, strict=True):
            assert p == pytest.approx(alone_p_yes(judge, item.video, question), abs=1e-5)
    assert len({round(p, 6) for ps in batched for p in ps}) == 5  # questions do not leak into each other


def test_family_parity_equals_generating_alone(family_judge, items):
    _, judge, _ = family_judge
    assert judge.parity(items) == [[alone_reply(judge, it.video, q) for q in it.questions] for it in items]


def test_every_judge_config_is_a_registry_entry():
    names = set()
    for name in group_options("judge"):
        cfg = load_group_config("judge", name)
        entry = JUDGES.lookup(JudgeSettings.from_config(cfg).name)
        assert name == entry.name
        assert cfg.model == (entry.hub_id or "tiny")
        names.add(entry.name)
    assert names == set(JUDGES)
    assert {JUDGES.lookup(n).family for n in names} == set(TINY)
    with pytest.raises(ValueError, match="judge.name"):
        JUDGES.lookup("gpt-judge")
