"""The image inputs of the official generation code, as components of the diffusers pipelines (`model.image_input:
official`); the pipelines themselves are not changed.

Wan2.1 (the Wan repository's image-to-video generate code): the whole input image, as a float tensor
to_tensor(img) * 2 - 1 (written (x - 0.5) / 0.5), goes
  * to the VAE stretched to the max-area size (h, w) with torch bicubic interpolation (no antialias, no crop),
    on the CPU in float32: `OfficialWanVideoProcessor`, the pipeline's `video_processor`;
  * to the CLIP image encoder stretched to 224x224 the same way, mapped back to [0, 1] and normalised with the
    OpenAI CLIP mean and std (no crop): `OfficialWanClipInput`, the pipeline's `image_processor`.
diffusers' defaults instead centre-crop a cover-resized image (LANCZOS) for the VAE and resize the short side and
centre-crop again for CLIP, which drops the sides of a landscape image.

FramePack (its inference scripts): SigLIP's processor is given the bucket-cropped image as uint8 and resizes it with
PIL (transformers' PIL backend, as the pinned transformers 4.46 did): `Uint8SiglipInput`, the pipeline's
`feature_extractor`. diffusers' FramePack pipeline hands the processor a float copy of that image instead.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from diffusers.video_processor import VideoProcessor
from PIL import Image
from torchvision.transforms.functional import normalize, to_tensor
from transformers import BatchFeature
from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil

# The mean and std of OpenAI's CLIP, which the official Wan code normalises its CLIP input with.
OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def signed_image(image: Image.Image) -> torch.Tensor:
    """(3, H, W) float32 in [-1, 1], as the official code's `TF.to_tensor(img).sub_(0.5).div_(0.5)`."""
    return to_tensor(image.convert("RGB")).sub_(0.5).div_(0.5)


def wan_vae_image(image: Image.Image, height: int, width: int) -> torch.Tensor:
    """(1, 3, height, width): the whole image stretched by torch bicubic interpolation (CPU, float32)."""
    return F.interpolate(signed_image(image)[None], size=(height, width), mode="bicubic", align_corners=False)


def wan_clip_pixels(image: Image.Image, size: int) -> torch.Tensor:
    """(1, 3, size, size): the whole image stretched by bicubic interpolation, back to [0, 1], CLIP-normalised."""
    pixels = F.interpolate(signed_image(image)[None], size=(size, size), mode="bicubic", align_corners=False)
    return normalize(pixels.mul_(0.5).add_(0.5), OPENAI_CLIP_MEAN, OPENAI_CLIP_STD)


class OfficialWanVideoProcessor(VideoProcessor):
    """The pipeline's `video_processor` with the official VAE input; a tensor input is left to diffusers."""

    def preprocess(self, image, height: int | None = None, width: int | None = None, **kwargs) -> torch.Tensor:
        if isinstance(image, Image.Image):
            return wan_vae_image(image, height, width)
        return super().preprocess(image, height=height, width=width, **kwargs)


class OfficialWanClipInput:
    """The pipeline's `image_processor`: `processor(images=pil, return_tensors="pt")` -> pixel_values of the
    official CLIP input at the encoder's `image_size`."""

    def __init__(self, image_size: int):
        self.image_size = image_size

    def __call__(self, images, return_tensors: str = "pt", **unused) -> BatchFeature:
        images = images if isinstance(images, list) else [images]
        return BatchFeature({"pixel_values": torch.cat([wan_clip_pixels(i, self.image_size) for i in images])})


def use_official_wan_inputs(pipe) -> None:
    """Swap the Wan image-to-video pipeline's two image preprocessors for the official ones."""
    pipe.image_processor = OfficialWanClipInput(pipe.image_encoder.config.image_size)
    pipe.video_processor = OfficialWanVideoProcessor(vae_scale_factor=pipe.vae_scale_factor_spatial)


class Uint8SiglipInput:
    """The FramePack pipeline's `feature_extractor`: it receives the pipeline's float copy (x + 1) / 2 of the
    bucket image, takes back the uint8 image (the copy is within 2e-8 of u / 255, far inside half a level, so
    rounding 255 x returns every value exactly) and gives it to SigLIP's processor with the PIL backend."""

    def __init__(self, processor: SiglipImageProcessorPil):
        self.processor = processor

    def __call__(self, images: torch.Tensor, return_tensors: str = "pt", **unused) -> BatchFeature:
        uint8 = images.detach().float().mul(255.0).round().clamp_(0, 255).to(torch.uint8).cpu()
        arrays = [np.ascontiguousarray(image.permute(1, 2, 0).numpy()) for image in uint8]
        return self.processor.preprocess(images=arrays, return_tensors=return_tensors)


def use_uint8_siglip_input(pipe) -> None:
    """Give the FramePack pipeline's SigLIP the uint8 image through transformers' PIL-backend processor, with the
    settings (size, resample, mean, std) of the pipeline's own processor."""
    own = pipe.feature_extractor
    keys = ("size", "resample", "do_resize", "do_rescale", "rescale_factor", "do_normalize", "image_mean",
            "image_std", "do_convert_rgb")
    pipe.feature_extractor = Uint8SiglipInput(SiglipImageProcessorPil(**{k: getattr(own, k) for k in keys}))
