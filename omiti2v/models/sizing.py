"""How each baseline sizes the input image: max area keeping the aspect (Wan2.1), FramePack's resolution
buckets, HunyuanVideo-1.5's aspect buckets (diffusers' own rule), or a fixed size reached by resize + center crop
(HunyuanVideo-I2V, SkyReels-V2, EasyAnimate). `model.sizing.mode` picks one (SIZING_MODES)."""

from __future__ import annotations

import math
from collections.abc import Mapping

from PIL import Image

# FramePack's (height, width) buckets for resolution 640 (official demo); other resolutions scale this table.
FRAMEPACK_BUCKETS_640 = (
    (416, 960), (448, 864), (480, 832), (512, 768), (544, 704), (576, 672), (608, 640),
    (640, 608), (672, 576), (704, 544), (768, 512), (832, 480), (864, 448), (960, 416),
)


def max_area_size(width: int, height: int, max_area: int, multiple: int) -> tuple[int, int]:
    """(height, width) with at most `max_area` pixels and the image's aspect, each rounded DOWN to `multiple`: the
    official Wan2.1 rule lat = floor(sqrt(area * h / w) / 8 / 2) * 2, size = 8 * lat (multiple 16), in the same
    float arithmetic (an 832x480 image gives 464x832: sqrt(399360 * 480/832) is 479.99999999999994)."""
    aspect = height / width
    h = math.floor(math.sqrt(max_area * aspect) / multiple) * multiple
    w = math.floor(math.sqrt(max_area / aspect) / multiple) * multiple
    return max(h, multiple), max(w, multiple)


def bucket_size(width: int, height: int, bucket: int, multiple: int = 16) -> tuple[int, int]:
    """FramePack's nearest bucket, official rule: the (h, w) of the table minimising |h_img*w - w_img*h|, the table
    scanned in order with ties going to the LATER bucket. Other resolutions than 640 scale the table (tiny runs)."""
    scale = bucket / 640
    best, best_metric = None, None
    for h, w in FRAMEPACK_BUCKETS_640:
        hw = (max(multiple, round(h * scale / multiple) * multiple), max(multiple, round(w * scale / multiple) * multiple))
        metric = abs(height * hw[1] - width * hw[0])
        if best_metric is None or metric <= best_metric:
            best, best_metric = hw, metric
    return best


def hunyuan15_bucket_size(width: int, height: int, target: int, multiple: int = 16) -> tuple[int, int]:
    """HunyuanVideo-1.5's bucket for the image: the pipeline's own rule (diffusers' image processor picks the bucket
    of `target` whose aspect is nearest the image's), asked the same way the pipeline asks it."""
    from diffusers.pipelines.hunyuan_video1_5.image_processor import HunyuanVideo15ImageProcessor

    processor = HunyuanVideo15ImageProcessor(vae_scale_factor=multiple, do_resize=False)
    return processor.calculate_default_height_width(height, width, target)


SIZING_MODES = ("max_area", "bucket", "hunyuan15_bucket", "fixed")


def target_size(sizing: Mapping, width: int, height: int) -> tuple[int, int]:
    """(height, width) of the generated video for an input image of width x height, per `model.sizing`."""
    mode = sizing.get("mode")
    if mode == "hunyuan15_bucket":
        return hunyuan15_bucket_size(width, height, int(sizing["target_size"]), int(sizing.get("multiple", 16)))
    if mode == "max_area":
        return max_area_size(width, height, int(sizing["max_area"]), int(sizing.get("multiple", 16)))
    if mode == "bucket":
        return bucket_size(width, height, int(sizing["bucket"]), int(sizing.get("multiple", 16)))
    if mode == "fixed":
        h, w = int(sizing["height"]), int(sizing["width"])
        if sizing.get("follow_orientation") and (height > width) != (h > w):
            h, w = w, h
        return h, w
    raise ValueError(f"model.sizing.mode {mode!r} is not one of {'|'.join(SIZING_MODES)}")


def framepack_fit_image(image: Image.Image, height: int, width: int) -> Image.Image:
    """The official FramePack resize + center crop: unchanged when already (height, width); else LANCZOS to the
    covering size int(round(side * scale)), then the crop box ((W - w)/2, (H - h)/2, ...) that PIL rounds half
    to even (differs from `fit_image`'s floor by one pixel when the overhang is odd)."""
    image = image.convert("RGB")
    if (image.height, image.width) == (height, width):
        return image
    scale = max(width / image.width, height / image.height)
    resized = image.resize((int(round(image.width * scale)), int(round(image.height * scale))), Image.Resampling.LANCZOS)
    return resized.crop(((resized.width - width) / 2, (resized.height - height) / 2,
                         (resized.width + width) / 2, (resized.height + height) / 2))


def fit_image(image: Image.Image, height: int, width: int) -> Image.Image:
    """Resize to cover (height, width) and center-crop, so the content keeps its aspect."""
    image = image.convert("RGB")
    scale = max(width / image.width, height / image.height)
    resized = image.resize((max(width, round(image.width * scale)), max(height, round(image.height * scale))),
                           Image.Resampling.LANCZOS)
    left, top = (resized.width - width) // 2, (resized.height - height) // 2
    return resized.crop((left, top, left + width, top + height))
