"""Input-preservation scorers: the copy index (SSIM of the input image and the last frame), VBench-I2V's
consistency rule, the input image as the model saw it, and the DreamSim weight files."""

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image
from skimage.metrics import structural_similarity

from omiti2v.scorers import Clip, build_scorer
from omiti2v.scorers.copy_index import coarse, copy_index
from omiti2v.scorers.i2v_background import DREAMSIM_FILES, DreamSimMissingError
from omiti2v.scorers.input_image import centre_crop_to_aspect, model_view, vbench_i2v_score
from omiti2v.scorers.weights import WeightFile
from omiti2v.video import VideoInfo, read_video

CPU = torch.device("cpu")


def textured(h: int = 192, w: int = 256, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((w, h), Image.Resampling.BICUBIC))


def drifting(image: np.ndarray, frames: int = 6, step: int = 6) -> np.ndarray:
    """A video that starts at the image and slides further away from it every frame."""
    return np.stack([np.roll(image, step * t, axis=1) for t in range(frames)])


def clip_of(frames: np.ndarray, image: np.ndarray, sample_id: str = "s") -> Clip:
    return Clip(sample_id, frames, VideoInfo(16.0, len(frames), frames.shape[2], frames.shape[1]), image=image)


def test_ssim_equals_scikit_images_gaussian_ssim():
    """Wang et al.'s SSIM (Gaussian sigma 1.5, population covariances, L 255) as scikit-image computes it, per
    colour channel of the 32-pixel images, averaged."""
    first, second = textured(256, 384, seed=1), textured(256, 384, seed=1) // 2 + textured(256, 384, seed=2) // 2
    a, b = coarse(first), coarse(second)
    assert tuple(a.shape) == (3, 1, 32, 48)
    ref = structural_similarity(a[:, 0].permute(1, 2, 0).numpy(), b[:, 0].permute(1, 2, 0).numpy(), channel_axis=2,
                                gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)
    assert copy_index(first, second) == pytest.approx(ref, abs=1e-9)


def test_copy_index_is_maximal_for_a_copied_input_and_lower_for_a_drifting_video():
    scorer = build_scorer("copy_index", OmegaConf.create({}), CPU)
    image = textured()
    still = scorer.score([clip_of(np.stack([image] * 5), image)])[0].value
    assert still == pytest.approx(1.0)
    other = textured(seed=5)
    values = []
    for amount in (0.1, 0.4, 0.8):  # videos that end amount of the way from the image to another picture
        frames = np.stack([(1 - w) * image + w * other for w in np.linspace(0, amount, 5)]).round().astype(np.uint8)
        values.append(scorer.score([clip_of(frames, image)])[0].value)
    assert values[0] < still and values == sorted(values, reverse=True)  # further drift, lower index
    assert scorer.frame_indices(VideoInfo(16.0, 81, 128, 96)) == [80]  # only the last frame is decoded


def test_vbench_i2v_rule_matches_a_plain_loop():
    rng = np.random.default_rng(0)
    image, frames = rng.normal(size=8), rng.normal(size=(5, 8))

    def cos(u, v):
        return max(0.0, float(u @ v / np.linalg.norm(u) / np.linalg.norm(v)))

    to_input = [cos(image, f) for f in frames]
    consecutive = [cos(frames[t - 1], frames[t]) for t in range(1, 5)]
    expected = 0.4 * max(to_input) + 0.3 * np.mean(consecutive) + 0.3 * min(consecutive)
    score, details = vbench_i2v_score(torch.tensor(image), torch.tensor(frames))
    assert score == pytest.approx(expected) and details["last_to_input"] == pytest.approx(to_input[-1])
    with pytest.raises(ValueError, match="2 frames"):
        vbench_i2v_score(torch.tensor(image), torch.tensor(frames[:1]))


def test_model_view_centre_crops_to_the_video_aspect_and_size():
    image = np.zeros((100, 300, 3), dtype=np.uint8)
    image[:, 100:200] = 255  # the centre third is white
    frames = np.zeros((2, 50, 50, 3), dtype=np.uint8)
    view = np.asarray(model_view(clip_of(frames, image)))
    assert view.shape == (50, 50, 3) and view.min() == 255  # only the centre square, at the frame size
    assert centre_crop_to_aspect(Image.new("RGB", (100, 300)), 1, 1).size == (100, 100)
    # After the paper resize the frames are stretched: the crop follows the native aspect, then the frame size.
    stretched = clip_of(np.zeros((2, 40, 80, 3), dtype=np.uint8), image)
    stretched.details["resize"] = {"from": [50, 50]}
    assert np.asarray(model_view(stretched)).min() == 255


@pytest.mark.parametrize("metric", ["i2v_subject", "i2v_background"])
def test_tiny_i2v_scorers_give_a_still_video_the_top_score(metric):
    scorer = build_scorer(metric, OmegaConf.create({metric: {"model": "tiny"}}), CPU)
    assert scorer.required_weights() == [] and not scorer.comparable
    scorer.load({})
    image = textured(128, 128)
    still, moving = scorer.score([clip_of(np.stack([image] * 4), image), clip_of(drifting(image, 4, 40), image, "m")])
    assert still.value == pytest.approx(1.0, abs=1e-5) and moving.value < still.value
    assert still.details["frames"] == 4


def test_real_i2v_backends_list_their_weights():
    subject = build_scorer("i2v_subject", OmegaConf.create({}), CPU)
    assert [w.hub_id for w in subject.required_weights()] == ["facebook/dino-vitb16"] and subject.comparable
    try:
        background = build_scorer("i2v_background", OmegaConf.create({}), CPU)
    except DreamSimMissingError as exc:  # the package is optional: one clear line instead
        assert "pip install dreamsim" in str(exc)
    else:
        assert background.required_weights() == list(DREAMSIM_FILES)


def test_archive_weights_unpack_with_their_top_folder_renamed(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("dino-main/hubconf.py", "dependencies = []\n")
    archive = tmp_path / "main.zip"
    archive.write_bytes(buffer.getvalue())
    wf = WeightFile("DINO source", "dreamsim/facebookresearch_dino_main/hubconf.py", url=archive.as_uri(),
                    unpack_into="dreamsim", top_folder="facebookresearch_dino_main")
    weights = tmp_path / "weights"
    assert wf.find(weights) is None and "unzip it into" in wf.instructions(weights)
    assert Path(wf.fetch(weights)).read_text() == "dependencies = []\n"
    assert wf.find(weights) == str(weights / "dreamsim/facebookresearch_dino_main/hubconf.py")


def test_real_alignvid_videos_depart_further_from_their_input_than_the_originals(shared_videos):
    """The paper authors' pairs share frame 0 (the input image): the AlignVid video makes the edit, so its last
    frame is further from that image than the original's. Pairs whose two files are both present."""
    pairs = [("framepack_original_flowers", "framepack_alignvid_flowers"),
             ("framepack_f1_original_kite", "framepack_f1_alignvid_kite"), ("wan21_original_car", "wan21_alignvid_car")]
    found = [(o, a) for o, a in pairs if (shared_videos / f"{o}.mp4").exists() and (shared_videos / f"{a}.mp4").exists()]
    if not found:
        pytest.skip(f"no complete original/AlignVid pair in {shared_videos}")
    for original, alignvid in found:
        first = read_video(shared_videos / f"{original}.mp4", [0])[0][0]
        index = {}
        for name in (original, alignvid):
            frames, info = read_video(shared_videos / f"{name}.mp4", [0])
            last = read_video(shared_videos / f"{name}.mp4", [info.num_frames - 1])[0][0]
            index[name] = copy_index(first, last)
        assert index[alignvid] < index[original], index
