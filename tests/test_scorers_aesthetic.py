"""Aesthetic quality: VBench's preprocessing against an independent implementation, the head's arithmetic, the
tiny random CLIP end to end; imaging quality's preprocessing and a random MUSIQ."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from omiti2v.scorers import Clip, build_scorer
from omiti2v.scorers.aesthetic import aesthetic_scores, clip_preprocess
from omiti2v.scorers.imaging import musiq_preprocess
from omiti2v.video import VideoInfo

CPU = torch.device("cpu")
MEAN = np.array([0.48145466, 0.4578275, 0.40821073])
STD = np.array([0.26862954, 0.26130258, 0.27577711])


def reference_clip_preprocess(frames: np.ndarray) -> np.ndarray:
    """VBench's clip_transform written out: short side -> 224 (long side truncated, as torchvision's Resize(int)),
    torch's bicubic kernel without antialias on float32 (as VBench: its source coordinates are float32, so a
    float64 resize differs by ~3e-4), centre crop at round((size - 224) / 2), then / 255 and mean/std in float64."""
    t, h, w, _ = frames.shape
    short, long = min(h, w), max(h, w)
    new_long = int(224 * long / short)
    size = (224, new_long) if h <= w else (new_long, 224)
    x = torch.from_numpy(frames.astype(np.float32)).permute(0, 3, 1, 2)
    x = F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=False)
    top, left = int(round((size[0] - 224) / 2.0)), int(round((size[1] - 224) / 2.0))
    x = x[:, :, top:top + 224, left:left + 224].numpy().astype(np.float64) / 255.0
    return (x - MEAN[None, :, None, None]) / STD[None, :, None, None]


@pytest.mark.parametrize("shape", [(2, 480, 832), (1, 512, 768), (2, 300, 200), (1, 224, 224), (1, 100, 150)])
def test_clip_preprocessing_equals_independent_reference(shape):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    ours = clip_preprocess(torch.from_numpy(frames))
    assert ours.shape == (shape[0], 3, 224, 224) and ours.dtype == torch.float32
    np.testing.assert_allclose(ours.numpy(), reference_clip_preprocess(frames), rtol=0, atol=1e-6)


def test_clip_preprocessing_does_not_round_after_resize():
    """VBench resizes float32 frames, so bicubic overshoot outside 0..255 survives (no uint8 round trip)."""
    frames = np.zeros((1, 300, 300, 3), dtype=np.uint8)
    frames[:, :, 150:] = 255
    x = clip_preprocess(torch.from_numpy(frames)) * torch.tensor(STD, dtype=torch.float32)[:, None, None] \
        + torch.tensor(MEAN, dtype=torch.float32)[:, None, None]
    assert x.min() < -1e-3 and x.max() > 1 + 1e-3


def test_head_math_on_known_vectors():
    head = torch.nn.Linear(768, 1)
    with torch.no_grad():
        head.weight.zero_()
        head.weight[0, :2] = torch.tensor([10.0, 20.0])
        head.bias.fill_(5.0)
    embeds = torch.zeros(2, 768, dtype=torch.float16)
    embeds[0, :2] = torch.tensor([3.0, 4.0])  # normalised to (0.6, 0.8): 10*0.6 + 20*0.8 + 5 = 27 -> 2.7
    embeds[1, 1] = -7.0                       # normalised to (0, -1): -20 + 5 = -15 -> -1.5
    scores = aesthetic_scores(embeds, head)
    assert scores.dtype == torch.float32
    assert scores.tolist() == pytest.approx([2.7, -1.5], abs=1e-6)


def _tiny_aesthetic():
    cfg = OmegaConf.create({"aesthetic_quality": {"clip": "tiny", "head": "random", "batch_size": 3}})
    scorer = build_scorer("aesthetic_quality", cfg, CPU)
    scorer.load()
    return scorer


def test_tiny_clip_scores_are_seeded_batch_invariant_and_not_comparable():
    rng = np.random.default_rng(3)
    clips = [Clip(f"c{i}", rng.integers(0, 256, (n, 48, 64, 3), dtype=np.uint8), VideoInfo(16.0, n, 64, 48))
             for i, n in enumerate((4, 2))]
    a, b = _tiny_aesthetic(), _tiny_aesthetic()
    together = a.score(clips)
    alone = [b.score([c])[0] for c in clips]
    for t, s, c in zip(together, alone, clips, strict=True):
        assert t.value == pytest.approx(s.value, abs=1e-6)
        assert t.details["frames"] == len(c.frames)
        assert t.value == pytest.approx(np.mean(t.details["frame_scores"]), abs=1e-7)
    # the video's value is the mean of its frames' head outputs / 10, computed here from the model directly
    with torch.no_grad():
        embeds = a.model(pixel_values=clip_preprocess(torch.from_numpy(clips[1].frames))).image_embeds
        direct = (a.head(embeds / embeds.norm(dim=-1, keepdim=True)) / 10).mean().item()
    assert together[1].value == pytest.approx(direct, abs=1e-6)
    assert a.comparable is False and a.backend == "clip:tiny+head:random:float32"


def test_musiq_preprocessing_longer_side_512():
    frames = torch.full((2, 600, 1000, 3), 255, dtype=torch.uint8)
    x = musiq_preprocess(frames)
    assert x.shape == (2, 3, 307, 512) and x.max().item() == pytest.approx(1.0, abs=1e-6)
    small = musiq_preprocess(torch.zeros((1, 64, 96, 3), dtype=torch.uint8))
    assert small.shape == (1, 3, 64, 96)


def test_imaging_quality_with_random_musiq():
    cfg = OmegaConf.create({"imaging_quality": {"musiq": "random", "batch_size": 2}})
    scorer = build_scorer("imaging_quality", cfg, CPU)
    scorer.load()
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (3, 64, 96, 3), dtype=np.uint8)
    score = scorer.score([Clip("m", frames, VideoInfo(16.0, 3, 96, 64))])[0]
    assert score.details["frames"] == 3
    assert score.value == pytest.approx(np.mean(score.details["frame_scores"]))
    with torch.no_grad():
        direct = scorer.musiq(torch.from_numpy(frames[:1]).permute(0, 3, 1, 2).float() / 255).item() / 100
    assert score.details["frame_scores"][0] == pytest.approx(direct, abs=1e-6)
    assert scorer.comparable is False and scorer.backend == "pyiqa:musiq-random"
