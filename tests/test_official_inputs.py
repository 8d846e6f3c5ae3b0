"""The image inputs of the official generation code, seen where the tiny pipelines feed their encoders, against a
plain torch/PIL restatement of the official preprocessing on a non-square image: Wan2.1's VAE and CLIP inputs (the
whole image stretched by bicubic interpolation, no crop) and FramePack's SigLIP input (the uint8 bucket image)."""

import math

import numpy as np
import pytest
import torch
from PIL import Image

from omiti2v.models import get_baseline

CLIP_MEAN, CLIP_STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)


def landscape_image(width: int = 150, height: int = 70) -> Image.Image:
    rng = np.random.default_rng(7)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def plain_wan_inputs(image: Image.Image, max_area: int, clip_size: int):
    """Official Wan2.1, restated: lat = floor(sqrt(area * h / w) / 8 / 2) * 2 (and w / h), size 8 * lat; the
    image as float (x / 255 - 0.5) / 0.5; the VAE gets it bicubic-stretched to that size; CLIP gets it stretched
    to clip_size squared, mapped back by * 0.5 + 0.5 and normalised with OpenAI's CLIP mean / std."""
    w, h = image.size
    lat_h = math.floor(math.sqrt(max_area * h / w) / 8 / 2) * 2
    lat_w = math.floor(math.sqrt(max_area * w / h) / 8 / 2) * 2
    x = torch.tensor(np.asarray(image)).permute(2, 0, 1).float() / 255
    x = ((x - 0.5) / 0.5)[None]
    vae = torch.nn.functional.interpolate(x, size=(8 * lat_h, 8 * lat_w), mode="bicubic")
    clip = torch.nn.functional.interpolate(x, size=(clip_size, clip_size), mode="bicubic") * 0.5 + 0.5
    clip = (clip - torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)) / torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    return (8 * lat_h, 8 * lat_w), vae, clip


def encoder_inputs(name: str, overrides: dict, image: Image.Image):
    """Run the tiny pipeline for one step; return (height, width, what its VAE encoded first, what its image
    encoder got)."""
    baseline = get_baseline(name)
    settings = baseline.settings({"weights": "tiny", "dtype": "float32", **overrides})
    pipe = baseline.build(settings)
    seen = {}
    encode = pipe.vae.encode

    def spy_encode(x, *args, **kwargs):
        seen.setdefault("vae", x.detach().clone())
        return encode(x, *args, **kwargs)

    def spy_pixels(module, args, kwargs):
        seen.setdefault("pixels", kwargs["pixel_values"].detach().clone())

    pipe.vae.encode = spy_encode
    pipe.image_encoder.register_forward_pre_hook(spy_pixels, with_kwargs=True)
    prepared, height, width = baseline.prepare_image(image, settings)
    kwargs = baseline.call_kwargs(pipe, prepared, "a cat", height, width, settings)
    with torch.no_grad():
        pipe(**{**kwargs, "output_type": "latent", "num_inference_steps": 1},
             generator=torch.Generator().manual_seed(0))
    return height, width, seen["vae"], seen["pixels"]


WAN_TINY = {"sizing": {"mode": "max_area", "max_area": 2560, "multiple": 16},
            "sampling": {"num_frames": 5, "num_inference_steps": 1}}


def test_wan_vae_and_clip_inputs_are_the_official_stretch_of_the_whole_image():
    image = landscape_image()
    height, width, vae, pixels = encoder_inputs("wan2.1", WAN_TINY, image)
    (h, w), plain_vae, plain_clip = plain_wan_inputs(image, 2560, clip_size=32)
    assert (height, width) == (h, w) == (32, 64)
    assert vae.shape == (1, 3, 5, h, w) and torch.equal(vae[:, :, 0], plain_vae)
    assert not vae[:, :, 1:].any()                   # the frames after the first are zeros, as the official code
    assert pixels.dtype == torch.float32 and torch.equal(pixels, plain_clip)


def test_wan_diffusers_inputs_crop_and_so_differ():
    """The former input (cover-resize + centre crop, then CLIP's short-side resize + crop) is not the official one:
    the comparison above can fail."""
    image = landscape_image()
    _, _, vae, pixels = encoder_inputs("wan2.1", {**WAN_TINY, "image_input": "diffusers"}, image)
    _, plain_vae, plain_clip = plain_wan_inputs(image, 2560, clip_size=32)
    assert (vae[:, :, 0] - plain_vae).abs().max() > 0.1 and (pixels - plain_clip).abs().max() > 0.5


def plain_siglip_input(image: Image.Image, size: int) -> torch.Tensor:
    """Official FramePack, restated: the bucket image as uint8, PIL bicubic to size x size, / 255, (x - 0.5) / 0.5."""
    resized = np.asarray(image.resize((size, size), Image.Resampling.BICUBIC), dtype=np.float32)
    return torch.from_numpy((resized / 255 - 0.5) / 0.5).permute(2, 0, 1)[None]


@pytest.mark.parametrize("image_input", ["official", "diffusers"])
def test_framepack_siglip_gets_the_uint8_bucket_image(image_input):
    image = landscape_image()
    settings = {"sizing": {"mode": "bucket", "bucket": 48}, "teacache": {"enabled": False}, "image_input": image_input,
                "sampling": {"num_frames": 9, "latent_window_size": 2, "num_inference_steps": 1}}
    baseline = get_baseline("framepack")
    bucket_image, _, _ = baseline.prepare_image(image, baseline.settings({"weights": "tiny", **settings}))
    *_, pixels = encoder_inputs("framepack", settings, image)
    assert pixels.dtype == torch.float16    # SigLIP runs in fp16 (official), its input cast to it as there
    gap = float((pixels - plain_siglip_input(bucket_image, 32).half()).abs().max())
    if image_input == "official":
        assert gap == 0
    else:  # diffusers resizes a float copy with torchvision: another input
        assert gap > 1e-3
