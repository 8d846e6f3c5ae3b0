"""I2V background, as VBench-I2V computes it: DreamSim embeddings of every frame against the input image.

The score is VBench-I2V's consistency rule (input_image.py) on DreamSim's embedding (`dreamsim(pretrained=True)`:
the "ensemble" model, DINO ViT-B/16 + CLIP ViT-B/16 + OpenCLIP ViT-B/16 with DreamSim's LoRA weights, embeddings
concatenated, centred and L2-normalised). No transformers or torchvision implementation of DreamSim exists (its
backbones are, its LoRA-tuned ensemble is not), so the real backend uses the `dreamsim` package itself
(`pip install dreamsim==0.2.1`), with its files in scorer.weights_dir/dreamsim: the ensemble checkpoint and the
torch hub DINO source and weights it loads. `tiny` is a random ViT with the same preprocessing, for the offline
smoke run.

Preprocessing, VBench-I2V's: frames as float 0..255 tensors resized to 224 x 224 bicubic (no antialias), / 255;
the input image through PIL: 224 x 224 bicubic, to 0..1. DreamSim normalises per backbone inside.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

from ..errors import SetupError
from .i2v_subject import FeatureScorer, build_vit
from .weights import WeightFile

SIZE = 224
DREAMSIM_DIR = "dreamsim"
DREAMSIM_FILES = (
    WeightFile(label="DreamSim ensemble checkpoint (dreamsim 0.2)",
               filename=f"{DREAMSIM_DIR}/ensemble_lora/adapter_config.json", unpack_into=DREAMSIM_DIR,
               url="https://github.com/ssundaram21/dreamsim/releases/download/v0.2.0-checkpoints/"
                   "dreamsim_ensemble_checkpoint.zip"),
    WeightFile(label="DINO ViT-B/16 weights (torch hub dino_vitb16, for DreamSim)",
               filename=f"{DREAMSIM_DIR}/checkpoints/dino_vitbase16_pretrain.pth",
               url="https://dl.fbaipublicfiles.com/dino/dino_vitbase16_pretrain/dino_vitbase16_pretrain.pth"),
    WeightFile(label="DINO source (torch hub facebookresearch/dino:main, for DreamSim)",
               filename=f"{DREAMSIM_DIR}/facebookresearch_dino_main/hubconf.py", unpack_into=DREAMSIM_DIR,
               top_folder="facebookresearch_dino_main",
               url="https://github.com/facebookresearch/dino/archive/refs/heads/main.zip"),
)


class DreamSimMissingError(SetupError):
    """The real I2V background backend needs the dreamsim package."""


class I2VBackgroundScorer(FeatureScorer):
    """`model`: dreamsim (the dreamsim package's ensemble, real weights) or `tiny` (random ViT, offline)."""

    metric = "i2v_background"
    default_model = "dreamsim"

    def __init__(self, cfg, device):
        super().__init__(cfg, device)
        if self.source not in ("dreamsim", "tiny"):
            raise ValueError(f"scorer.i2v_background.model: expected 'dreamsim' or 'tiny', got {self.source!r}")
        if self.source == "dreamsim":
            import importlib.util

            if importlib.util.find_spec("dreamsim") is None:
                raise DreamSimMissingError("scorer i2v_background needs the dreamsim package (VBench-I2V's DreamSim): "
                                           "pip install dreamsim==0.2.1, or scorer.i2v_background.model=tiny")

    def required_weights(self) -> list[WeightFile]:
        return list(DREAMSIM_FILES) if self.source == "dreamsim" else []

    def load(self, weights: dict[str, str] | None = None) -> None:
        if self.source == "tiny":
            self.model = build_vit("tiny", {}, self.device, self.dtype)
            return
        from dreamsim import dreamsim

        cache = Path((weights or {})[DREAMSIM_FILES[0].label]).parents[1]
        model, _ = dreamsim(pretrained=True, device=str(self.device), cache_dir=str(cache))
        self.model = model.to(self.dtype)

    def preprocess(self, frames, image):
        x = torch.from_numpy(frames).to(self.device).permute(0, 3, 1, 2).float()
        x = TF.resize(x, [SIZE, SIZE], interpolation=InterpolationMode.BICUBIC, antialias=False) / 255.0
        pil = TF.resize(image, [SIZE, SIZE], interpolation=InterpolationMode.BICUBIC)
        return x, TF.to_tensor(pil).to(self.device)

    def embed(self, pixels):
        if self.source == "tiny":
            return self.model(pixel_values=pixels).last_hidden_state[:, 0]
        return self.model.embed(pixels)
