"""I2V subject, as VBench-I2V computes it: DINO ViT-B/16 features of every frame against the input image.

The score is VBench-I2V's consistency rule (input_image.py) on DINO's class token. VBench-I2V loads DINO through
torch hub (facebookresearch/dino, dino_vitb16): its forward returns the class token after the final LayerNorm.
transformers' ViTModel of facebook/dino-vitb16 is the same network with the same weights; its last hidden
state's class token is that output (LayerNorm eps set to DINO's 1e-6, no pooler).

Preprocessing, VBench-I2V's: frames as float 0..255 tensors, short side to 256 bicubic (no antialias, as the
tensor path of the torchvision VBench ran), centre crop 224, / 255, ImageNet mean/std; the input image through
PIL: short side 256 bicubic, centre crop 224, to 0..1, the same normalisation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

from .base import Clip, Score, Scorer
from .input_image import model_view, vbench_i2v_score
from .weights import WeightFile

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RESIZE, CROP = 256, 224
DINO_HUB_ID = "facebook/dino-vitb16"
DINO_VITB16 = WeightFile(label="DINO ViT-B/16 (facebook/dino-vitb16)", filename="dino-vitb16", hub_id=DINO_HUB_ID)
TINY_SEED = 0


def dino_frames(frames: torch.Tensor) -> torch.Tensor:
    """uint8 (T, H, W, 3) -> normalised (T, 3, 224, 224): VBench-I2V's tensor transform."""
    x = frames.permute(0, 3, 1, 2).float()
    x = TF.center_crop(TF.resize(x, RESIZE, interpolation=InterpolationMode.BICUBIC, antialias=False), CROP)
    return TF.normalize(x / 255.0, IMAGENET_MEAN, IMAGENET_STD)


def dino_image(image: Image.Image) -> torch.Tensor:
    """PIL image -> normalised (3, 224, 224): VBench-I2V's PIL transform."""
    x = TF.center_crop(TF.resize(image, RESIZE, interpolation=InterpolationMode.BICUBIC), CROP)
    return TF.normalize(TF.to_tensor(x), IMAGENET_MEAN, IMAGENET_STD)


def tiny_vit_config():
    from transformers import ViTConfig

    return ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                     image_size=CROP, patch_size=16, layer_norm_eps=1e-6)


def build_vit(source: str, weights: dict[str, str], device: torch.device, dtype: torch.dtype):
    """DINO ViT-B/16 from real weights, or a tiny random ViT ("tiny", seeded) for the offline smoke run."""
    from transformers import ViTModel

    if source == "tiny":
        state = torch.random.get_rng_state()
        torch.manual_seed(TINY_SEED)
        try:
            model = ViTModel(tiny_vit_config(), add_pooling_layer=False)
        finally:
            torch.random.set_rng_state(state)
    else:
        model = ViTModel.from_pretrained(weights[DINO_VITB16.label] if source == DINO_HUB_ID else source,
                                         add_pooling_layer=False, layer_norm_eps=1e-6)
    return model.to(device, dtype).eval().requires_grad_(False)


class FeatureScorer(Scorer):
    """A scorer that embeds every frame and the input image with one network (`scorer.<metric>.model`, `tiny`
    for a random offline one), in batches of `batch_size`."""

    needs_input_image = True
    default_model: str

    def __init__(self, cfg, device):
        super().__init__(cfg, device)
        self.options = cfg.get(self.metric) or {}
        self.source = str(self.options.get("model", self.default_model))
        self.batch_size = int(self.options.get("batch_size", 64))
        self.dtype = getattr(torch, self.options.get("dtype", "float32")) if device.type == "cuda" else torch.float32

    @property
    def backend(self) -> str:
        return f"{self.source}:{str(self.dtype).removeprefix('torch.')}"

    @property
    def comparable(self) -> bool:
        return self.source != "tiny"

    def embed(self, pixels: torch.Tensor) -> torch.Tensor:
        """(N, 3, 224, 224) preprocessed -> (N, D) features."""
        raise NotImplementedError

    def preprocess(self, frames: np.ndarray, image: Image.Image) -> tuple[torch.Tensor, torch.Tensor]:
        """(frames (T, 3, 224, 224), image (3, 224, 224))."""
        raise NotImplementedError

    @torch.inference_mode()
    def features(self, pixels: torch.Tensor) -> torch.Tensor:
        out = [self.embed(pixels[i:i + self.batch_size].to(self.device, self.dtype)).float()
               for i in range(0, len(pixels), self.batch_size)]
        return torch.cat(out)

    def score(self, clips: Sequence[Clip]) -> list[Score]:
        inputs = [self.preprocess(clip.select(self.frame_indices(clip.info)), model_view(clip)) for clip in clips]
        stacked = torch.cat([torch.cat([frames, image[None]]) for frames, image in inputs])
        per_clip = self.features(stacked).split([len(frames) + 1 for frames, _ in inputs])
        return [Score(*vbench_i2v_score(feats[-1], feats[:-1])) for feats in per_clip]


class I2VSubjectScorer(FeatureScorer):
    """`model`: facebook/dino-vitb16 (hub id or local folder; real weights) or `tiny` (random, offline)."""

    metric = "i2v_subject"
    default_model = DINO_HUB_ID

    def required_weights(self) -> list[WeightFile]:
        if self.source == "tiny":
            return []
        return [DINO_VITB16 if self.source == DINO_HUB_ID else WeightFile("DINO ViT-B/16", self.source, hub_id=self.source)]

    def load(self, weights: dict[str, str] | None = None) -> None:
        self.model = build_vit(self.source, weights or {}, self.device, self.dtype)

    def preprocess(self, frames, image):
        return dino_frames(torch.from_numpy(frames).to(self.device)), dino_image(image).to(self.device)

    def embed(self, pixels):
        return self.model(pixel_values=pixels).last_hidden_state[:, 0]
