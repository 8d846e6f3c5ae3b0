"""Dynamic degree: VBench's formulas, the full DIS path on videos with known motion, the RAFT path, real videos."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from scipy.ndimage import gaussian_filter, shift

from omiti2v.scorers import Clip, build_scorer
from omiti2v.scorers.dynamic_degree import (
    frame_interval,
    is_dynamic,
    motion_threshold,
    pad_to_multiple_of_8,
    required_count,
    sampled_indices,
    top_fraction_mean,
)
from omiti2v.video import VideoInfo, read_video, write_video

CPU = torch.device("cpu")


@pytest.mark.parametrize(("fps", "interval"), [(4, 1), (8, 1), (12, 2), (16, 2), (20, 2), (24, 3), (25, 3), (28, 4), (30, 4), (60, 8)])
def test_frame_interval_is_python_rounded_fps_over_8(fps, interval):
    assert frame_interval(fps) == interval  # 12 -> 1.5 -> 2 and 20 -> 2.5 -> 2: halves go to even


def test_wan_example_from_the_paper_setup():
    kept = sampled_indices(81, 16.0)
    assert frame_interval(16.0) == 2 and len(kept) == 41 and kept[-1] == 80
    assert required_count(41) == 10
    assert motion_threshold(480, 832, 16.0) == 11.25
    assert motion_threshold(832, 480, 16.0) == 11.25


@pytest.mark.parametrize(("frames", "fps", "n", "count"), [
    (81, 16, 41, 10),    # Wan
    (181, 30, 46, 12),   # FramePack: 4 * 46 / 16 = 11.5 -> 12 (half to even)
    (181, 24, 61, 15),   # FramePack-F1: 15.25 -> 15
    (42, 8, 42, 10),     # 10.5 -> 10 (half to even, down)
    (2, 8, 2, 0),        # 0.5 -> 0
    (49, 8, 49, 12),     # 12.25 -> 12
])
def test_required_count_at_several_frame_rates(frames, fps, n, count):
    assert len(sampled_indices(frames, fps)) == n
    assert required_count(n) == count


@pytest.mark.parametrize(("h", "w", "fps", "threshold"), [
    (480, 832, 16, 11.25), (512, 768, 24, 12.0), (256, 256, 30, 6.0), (720, 1280, 24, 16.875), (64, 128, 8, 1.5),
    (256, 256, 4, 12.0),  # below 8 fps VBench scales the threshold by 8 / fps
])
def test_threshold_scales_with_the_short_side(h, w, fps, threshold):
    assert motion_threshold(h, w, fps) == pytest.approx(threshold, abs=1e-12)


def test_is_dynamic_follows_vbench_check_move():
    assert is_dynamic([12.0, 12.0, 1.0], 11.25, 2)
    assert not is_dynamic([12.0, 11.25, 1.0], 11.25, 2)  # strictly above the threshold
    assert is_dynamic([0.0], 11.25, 0)  # count 0 with one pair: dynamic, as VBench
    assert not is_dynamic([], 11.25, 0)  # no pairs: VBench never reaches its test


def test_padding_is_raft_sintel_replicate():
    x = torch.arange(2 * 3 * 13 * 10, dtype=torch.float32).reshape(2, 3, 13, 10)
    y = pad_to_multiple_of_8(x)
    assert y.shape == (2, 3, 16, 16)
    # 3 rows: 1 on top, 2 at the bottom; 6 columns: 3 each side; edge values repeated
    assert torch.equal(y[..., 1:14, 3:13], x)
    assert torch.equal(y[..., 0, 3:13], x[..., 0, :]) and torch.equal(y[..., 15, 3:13], x[..., 12, :])
    assert torch.equal(y[..., 1:14, 0], x[..., :, 0]) and torch.equal(y[..., 1:14, 15], x[..., :, 9])
    assert pad_to_multiple_of_8(y) is y


def test_top_fraction_mean_on_known_magnitudes():
    # 20 x 10 field: cut = int(200 * 0.05) = 10; ten pixels of (3, 4) -> magnitude 5, the rest smaller
    flow = torch.zeros(1, 2, 20, 10)
    flow[0, 0] = 0.5
    flow[0, :, 0, :] = torch.tensor([3.0, 4.0])[:, None]
    flow[0, 0, 5, 5] = 6.0  # one larger value displaces one 5
    assert top_fraction_mean(flow).item() == pytest.approx((6.0 + 9 * 5.0) / 10)
    ref = np.sort(-np.sqrt(flow[0, 0].numpy() ** 2 + flow[0, 1].numpy() ** 2).ravel())
    assert top_fraction_mean(flow).item() == pytest.approx(np.mean(np.abs(ref)[:10]))


def _texture(size: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    tex = gaussian_filter(rng.random((size, size)), 2.0, mode="wrap")
    return (tex - tex.min()) / (tex.max() - tex.min())


def _translating_video(path, px_per_frame: float, frames: int = 17, size: int = 128, fps: float = 16.0):
    tex = _texture(size)
    out = []
    for t in range(frames):
        moved = shift(tex, (0.0, px_per_frame * t), order=3, mode="grid-wrap")
        grey = np.clip(moved * 255, 0, 255).astype(np.uint8)
        out.append(np.stack([grey, np.roll(grey, 7, 0), 255 - grey], axis=-1))
    return write_video(path, np.stack(out), fps)


def _dis_scorer():
    cfg = OmegaConf.create({"flow_backend": "opencv_dis", "dynamic_degree": {"dis_preset": "medium"}})
    scorer = build_scorer("dynamic_degree", cfg, CPU)
    scorer.load()
    return scorer


def _score_file(scorer, path):
    frames, info = read_video(path)
    return scorer.score([Clip(path.stem, frames, info)])[0]


@pytest.mark.parametrize(("speed", "dynamic"), [(0.0, False), (0.5, False), (4.0, True)])
def test_dis_path_on_known_motion(tmp_path, speed, dynamic):
    """128 px at 16 fps: interval 2, 9 frames kept, 2 of 8 pairs needed above 3 px. A pair spans 2 frames, so
    it moves 2 * speed px: 0 and 1 px are static, 8 px is dynamic; measured flow matches the true shift."""
    scorer = _dis_scorer()
    score = _score_file(scorer, _translating_video(tmp_path / "v.mp4", speed))
    d = score.details
    assert (d["frame_interval"], d["sampled_frames"], d["required_count"], d["threshold"]) == (2, 9, 2, 3.0)
    assert len(d["pair_scores"]) == 8
    assert score.value == float(dynamic)
    assert np.median(d["pair_scores"]) == pytest.approx(2 * speed, abs=0.35 + 0.15 * 2 * speed)
    assert scorer.backend == "opencv_dis" and scorer.comparable is False


def test_pairs_batch_across_clips_without_changing_scores(tmp_path):
    scorer = _dis_scorer()
    paths = [_translating_video(tmp_path / f"{s}.mp4", s, frames=9) for s in (1.0, 3.0)]
    clips = [Clip(p.stem, *read_video(p)) for p in paths]
    together = scorer.score(clips)
    alone = [scorer.score([c])[0] for c in clips]
    for a, b in zip(together, alone, strict=True):
        assert a.details["pair_scores"] == pytest.approx(b.details["pair_scores"], abs=1e-6)


@pytest.mark.slow
def test_raft_path_matches_vbench_procedure_with_random_weights(monkeypatch):
    """torchvision raft_large, random weights: 20 updates, inputs 2 * (x / 255) - 1, replicate padding to 8,
    float32; the scorer's pair scores equal an independent VBench-style loop (one pair at a time, numpy)."""
    from torchvision.models.optical_flow import raft_large

    cfg = OmegaConf.create({"flow_backend": "raft", "dynamic_degree": {"raft_weights": "random", "pair_batch_size": 2}})
    scorer = build_scorer("dynamic_degree", cfg, CPU)
    scorer.load()
    model = scorer.flow_backend.model
    calls = []
    original = model.forward
    monkeypatch.setattr(model, "forward", lambda a, b, **kw: calls.append((a, b, kw)) or original(a, b, **kw))

    rng = np.random.default_rng(1)
    frames = (gaussian_filter(rng.random((3, 130, 126, 3)), (0, 3, 3, 0)) * 255 * 3).clip(0, 255).astype(np.uint8)
    score = scorer.score([Clip("r", frames, VideoInfo(8.0, 3, 126, 130))])[0]  # 8 fps: every frame, 2 pairs

    assert [kw for *_, kw in calls] == [{"num_flow_updates": 20}]
    a, b, _ = calls[0]
    assert a.shape == (2, 3, 136, 128) and a.dtype == torch.float32
    assert a.min() >= -1 and a.max() <= 1
    assert score.details["padded_size"] == [128, 136] and score.details["size"] == [126, 130]
    assert scorer.backend == "raft_large:random:float32" and scorer.comparable is False

    reference = raft_large(weights=None)
    reference.load_state_dict(model.state_dict())
    reference.eval()
    expected = []
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
    for i in range(2):
        pair = F.pad(x[i:i + 2], [1, 1, 3, 3], mode="replicate")  # 126 -> 128, 130 -> 136, split evenly
        pair = 2 * (pair / 255.0) - 1.0
        with torch.no_grad():
            flow = reference(pair[:1], pair[1:], num_flow_updates=20)[-1][0].permute(1, 2, 0).numpy()
        rad = np.sqrt(np.square(flow[..., 0]) + np.square(flow[..., 1])).ravel()
        expected.append(float(np.mean(np.abs(np.sort(-rad))[: int(rad.size * 0.05)])))
    assert score.details["pair_scores"] == pytest.approx(expected, rel=1e-4, abs=1e-5)


@pytest.mark.slow
def test_real_videos_decode_with_true_fps_and_dis_dynamic_degree(shared_videos, capsys):
    expected = {"wan21": (16.0, 81, 768, 512), "framepack_f1": (24.0, 181, 768, 512), "framepack": (30.0, 181, 832, 480)}
    scorer = _dis_scorer()
    results = {}
    for path in sorted(shared_videos.glob("*.mp4")):
        model = path.stem.split("_original")[0].split("_alignvid")[0]
        fps, num_frames = expected[model][:2]
        indices = list(sampled_indices(num_frames, fps))
        frames, info = read_video(path, indices)
        assert (info.fps, info.num_frames, info.width, info.height) == expected[model]
        assert frames.shape == (len(indices), info.height, info.width, 3)
        score = scorer.score([Clip(path.stem, frames, info, indices)])[0]
        assert score.details["required_count"] == required_count(len(indices))
        results[path.stem] = (score.value, score.details["pairs_above"], score.details["required_count"])
    assert len(results) == 6
    with capsys.disabled():
        print("\nDIS dynamic degree (dynamic, pairs above threshold, needed):")
        for name, (value, above, needed) in results.items():
            print(f"  {name:28s} {'dynamic' if value else 'static ':7s} {above:3d} / {needed}")
    # the car clip: the original barely moves, AlignVid drives the car out of the frame
    assert results["wan21_alignvid_car"][0] == 1.0 and results["wan21_original_car"][0] == 0.0
