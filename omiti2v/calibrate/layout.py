"""Where the input image and the generated video sit in the token sequences of each attention site.

The foreground ratio needs, per attention call, the keys that *are* the input image (with their 2-D grid) and
the queries that are generated video tokens. A forward pre-hook records the latent geometry of each
transformer call; `region_for` turns it into index ranges per family and site:

* Wan / SkyReels-V2 I2V ``cross_image``: keys = the image encoder's tokens (a CLS token, then a square grid of
  patches of the centre-cropped image); queries = all video tokens.
* Wan / SkyReels ``self``: tokens = video frames in (frame, row, col) order; latent frame 0 is the input image.
* HunyuanVideo-I2V ``dual`` / ``single``: [video tokens, text tokens]; latent frame 0 is the image (token
  replace).
* FramePack ``dual`` / ``single``: [4x history, 2x history, clean latents, noisy latents, image embeds, text];
  the first clean latent is the input image.
* EasyAnimate ``joint``: [text tokens, video tokens]; latent frame 0 is the image (inpainting with frame 0 kept).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from omiti2v.asm.gating import TimestepTracker

FAMILY_OF_CLASS = {
    "WanTransformer3DModel": "wan",
    "SkyReelsV2Transformer3DModel": "wan",
    "HunyuanVideoTransformer3DModel": "hunyuan",
    "HunyuanVideoFramepackTransformer3DModel": "framepack",
    "EasyAnimateTransformer3DModel": "easyanimate",
}


@dataclass(frozen=True)
class Geometry:
    """Token grid of one transformer call: latent frames and rows/cols after patching, plus sequence extras."""

    frames: int
    rows: int
    cols: int
    clean_frames: int = 0   # FramePack: clean latents packed before the noisy ones
    context_tokens: int = 0  # FramePack: image-embedding + text tokens appended after the video tokens

    @property
    def frame_tokens(self) -> int:
        return self.rows * self.cols


@dataclass(frozen=True)
class Region:
    """Index ranges of one attention call: scored queries and input-image keys (see the module docstring)."""

    queries: tuple[int, int]       # [start, stop) of generated video tokens, laid out (frame, row, col)
    video_grid: tuple[int, int]    # (rows, cols) of those query frames
    keys: tuple[int, int]          # [start, stop) of the input-image tokens among the keys
    key_grid: tuple[int, int]      # their (rows, cols)
    square_crop: bool = False      # the image tokens see the centre square of the image


def family_of(transformer: torch.nn.Module) -> str:
    name = type(transformer).__name__
    if name not in FAMILY_OF_CLASS:
        raise TypeError(f"no token layout known for {name}; supported: {sorted(FAMILY_OF_CLASS)}")
    return FAMILY_OF_CLASS[name]


def _patch(transformer: torch.nn.Module) -> tuple[int, int, int]:
    cfg = transformer.config
    patch = cfg.patch_size
    if isinstance(patch, (tuple, list)):
        return int(patch[0]), int(patch[1]), int(patch[2])
    return int(getattr(cfg, "patch_size_t", 1) or 1), int(patch), int(patch)


class GeometryTracker(TimestepTracker):
    """TimestepTracker that also records the `Geometry` of the latest call of its transformer."""

    def __init__(self, transformer: torch.nn.Module):
        super().__init__(transformer)
        self.family = family_of(transformer)
        self.patch = _patch(transformer)
        self.geometry: Geometry | None = None

    def _record(self, module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        super()._record(module, args, kwargs)
        bound = self._signature.bind_partial(*args, **kwargs).arguments
        _, _, frames, height, width = bound["hidden_states"].shape
        pt, ph, pw = self.patch
        clean = context = 0
        if self.family == "framepack":
            latents_clean = bound.get("latents_clean")
            clean = 0 if latents_clean is None else latents_clean.shape[2] // pt
            text, text_mask = bound["encoder_hidden_states"], bound.get("encoder_attention_mask")
            # with batch 1 the model drops the padded text tokens instead of masking them
            context = int(text_mask.sum()) if text.shape[0] == 1 and text_mask is not None else text.shape[1]
            if bound.get("image_embeds") is not None:
                context += bound["image_embeds"].shape[1]
        self.geometry = Geometry(frames // pt, height // ph, width // pw, clean, context)


def region_for(family: str, site: str, geometry: Geometry, num_queries: int, num_keys: int) -> Region:
    """The `Region` of an attention call; raises ValueError when the sequence does not match the layout."""
    g = geometry
    grid = (g.rows, g.cols)
    video = g.frames * g.frame_tokens
    if site == "cross_image":
        side = math.isqrt(num_keys - 1)
        if side * side != num_keys - 1:
            raise ValueError(f"cross_image has {num_keys} keys; expected a CLS token plus a square patch grid")
        queries = _generated(g, 0) if num_queries == video else (0, num_queries)
        return Region(queries, grid, (1, num_keys), (side, side), square_crop=True)
    if family == "wan" and site == "self":
        _check(num_keys == video, family, site, num_keys, f"{video} video tokens")
        return Region(_generated(g, 0), grid, (0, g.frame_tokens), grid)
    if family == "hunyuan" and site in ("dual", "single"):
        _check(num_keys > video, family, site, num_keys, f"{video} video + text tokens")
        return Region(_generated(g, 0), grid, (0, g.frame_tokens), grid)
    if family == "framepack" and site in ("dual", "single"):
        noisy_stop = num_keys - g.context_tokens
        noisy_start = noisy_stop - video
        image_start = noisy_start - g.clean_frames * g.frame_tokens
        _check(g.clean_frames > 0 and image_start >= 0, family, site, num_keys,
               "history + clean + noisy + context tokens (is latents_clean passed?)")
        return Region((noisy_start, noisy_stop), grid, (image_start, image_start + g.frame_tokens), grid)
    if family == "easyanimate" and site == "joint":
        start = num_keys - video
        _check(start >= 0, family, site, num_keys, f"text + {video} video tokens")
        return Region(_generated(g, start), grid, (start, start + g.frame_tokens), grid)
    raise ValueError(f"site {site!r} of family {family!r} has no input-image tokens to score; use "
                     f"{default_site(family)!r}")


def _generated(g: Geometry, start: int) -> tuple[int, int]:
    """Queries of the video frames after the image frame (all frames when there is only one)."""
    first = g.frame_tokens if g.frames > 1 else 0
    return start + first, start + g.frames * g.frame_tokens


def _check(ok: bool, family: str, site: str, num_keys: int, expected: str) -> None:
    if not ok:
        raise ValueError(f"{family} {site} attention has {num_keys} keys; expected {expected}")


def default_site(family: str, has_image_branch: bool = True) -> str:
    """The site whose attention the calibration scores: where the family's ASM recipe acts and the image is."""
    if family == "wan":
        return "cross_image" if has_image_branch else "self"
    return {"hunyuan": "single", "framepack": "single", "easyanimate": "joint"}[family]
