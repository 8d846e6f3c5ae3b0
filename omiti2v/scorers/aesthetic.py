"""Aesthetic quality, as VBench computes it (https://github.com/Vchitect/VBench, aesthetic_quality.py).

Every frame: VBench's CLIP preprocessing, OpenAI CLIP ViT-L/14 image embedding, L2-normalised, the LAION linear
head (768 -> 1), divided by 10. Per video: the mean over its frames; the run's value is the mean over videos.
Frames of several videos go through CLIP together (`batch_size`); per-frame results do not depend on batching.

VBench's preprocessing, replicated on the scorer's device: frames as float32 0..255 (VBench's load_video returns
`torch.Tensor(uint8 array)`, so there is no uint8 rounding after the resize), short side to 224 bicubic without
antialias, centre crop 224, / 255, CLIP mean/std. VBench runs OpenAI's CLIP in fp16 on GPU, so do we (`dtype`);
the embedding is cast to float32 before the normalisation and the head, as VBench does.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

from .base import Clip, Score, Scorer
from .weights import WeightFile

CLIP_SIZE = 224
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
CLIP_HUB_ID = "openai/clip-vit-large-patch14"
LAION_HEAD = WeightFile(
    label="LAION aesthetic linear head (sa_0_4_vit_l_14_linear.pth)",
    filename="sa_0_4_vit_l_14_linear.pth",
    url="https://github.com/LAION-AI/aesthetic-predictor/blob/main/sa_0_4_vit_l_14_linear.pth?raw=true",
)
CLIP_VIT_L14 = WeightFile(label="CLIP ViT-L/14 (OpenAI)", filename="clip-vit-large-patch14", hub_id=CLIP_HUB_ID)
TINY_SEED = 0


def clip_preprocess(frames: torch.Tensor, size: int = CLIP_SIZE) -> torch.Tensor:
    """uint8 (T, H, W, 3) -> normalised float32 (T, 3, size, size), VBench's clip_transform."""
    x = frames.permute(0, 3, 1, 2).float()
    x = TF.resize(x, size, interpolation=InterpolationMode.BICUBIC, antialias=False)
    x = TF.center_crop(x, size)
    return TF.normalize(x / 255.0, CLIP_MEAN, CLIP_STD)


def aesthetic_scores(image_embeds: torch.Tensor, head: torch.nn.Linear) -> torch.Tensor:
    """Per-frame aesthetic score in 0..1: the LAION head on the L2-normalised float32 embedding, / 10."""
    return head(F.normalize(image_embeds.float(), dim=-1, p=2)).squeeze(-1) / 10


def tiny_clip_config():
    """A 2-layer CLIP vision tower with ViT-L/14's 768-d projection, so the real head's shape fits."""
    from transformers import CLIPVisionConfig

    return CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                            image_size=CLIP_SIZE, patch_size=32, projection_dim=768, hidden_act="quick_gelu")


def vit_l14_config():
    """OpenAI CLIP ViT-L/14's vision tower, for random-weight runs (benchmarks) without any download."""
    from transformers import CLIPVisionConfig

    return CLIPVisionConfig(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                            image_size=CLIP_SIZE, patch_size=14, projection_dim=768, hidden_act="quick_gelu")


class AestheticScorer(Scorer):
    """`clip`: a hub id or local folder (real weights), `tiny` or `random-vit-l14` (random, seeded, offline).
    `head`: `laion` (sa_0_4_vit_l_14_linear.pth from the weights folder) or `random` (seeded)."""

    def __init__(self, cfg, device):
        super().__init__(cfg, device)
        self.options = cfg.get("aesthetic_quality") or {}
        self.clip_source = str(self.options.get("clip", CLIP_HUB_ID))
        self.head_source = str(self.options.get("head", "laion"))
        if self.head_source not in ("laion", "random"):
            raise ValueError(f"scorer.aesthetic_quality.head: expected 'laion' or 'random', got {self.head_source!r}")
        self.batch_size = int(self.options.get("batch_size", 128))
        dtype = self.options.get("dtype", "float16")
        self.dtype = getattr(torch, dtype) if device.type == "cuda" else torch.float32

    @property
    def random_clip(self) -> bool:
        return self.clip_source in ("tiny", "random-vit-l14")

    @property
    def backend(self) -> str:
        return f"clip:{self.clip_source}+head:{self.head_source}:{str(self.dtype).removeprefix('torch.')}"

    @property
    def comparable(self) -> bool:
        """Real CLIP (the hub id, or a local folder that must hold it) and the LAION head."""
        return not self.random_clip and self.head_source == "laion"

    def required_weights(self) -> list[WeightFile]:
        files = []
        if not self.random_clip:
            files.append(CLIP_VIT_L14 if self.clip_source == CLIP_HUB_ID
                         else WeightFile("CLIP vision model", self.clip_source, hub_id=self.clip_source))
        return files + ([LAION_HEAD] if self.head_source == "laion" else [])

    def load(self, weights: dict[str, str] | None = None) -> None:
        from transformers import CLIPVisionModelWithProjection

        weights = weights or {}
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(TINY_SEED)  # random towers and heads are the same on every machine
        try:
            if self.random_clip:
                config = tiny_clip_config() if self.clip_source == "tiny" else vit_l14_config()
                with torch.device(self.device):
                    self.model = CLIPVisionModelWithProjection(config)
            else:
                location = next(weights[w.label] for w in self.required_weights() if w.hub_id is not None)
                self.model = CLIPVisionModelWithProjection.from_pretrained(location, dtype=self.dtype).to(self.device)
            self.head = torch.nn.Linear(768, 1).to(self.device)
        finally:
            torch.random.set_rng_state(generator_state)
        if self.head_source == "laion":
            self.head.load_state_dict(torch.load(weights[LAION_HEAD.label], map_location=self.device, weights_only=True))
        else:
            with torch.no_grad():  # centre the random head on the LAION scale (1..10) so smoke values lie in 0..1
                self.head.bias.fill_(5.0)
        self.model.to(self.dtype).eval().requires_grad_(False)
        self.head.eval().requires_grad_(False)

    @torch.inference_mode()
    def frame_scores(self, pixels: torch.Tensor) -> torch.Tensor:
        """Preprocessed frames (T, 3, 224, 224) -> per-frame scores (T,), in batches of `batch_size`."""
        out = []
        for start in range(0, len(pixels), self.batch_size):
            batch = pixels[start:start + self.batch_size].to(self.device, self.dtype)
            out.append(aesthetic_scores(self.model(pixel_values=batch).image_embeds, self.head))
        return torch.cat(out) if out else torch.empty(0, device=self.device)

    def score(self, clips: Sequence[Clip]) -> list[Score]:
        pixels = [clip_preprocess(torch.from_numpy(clip.select(self.frame_indices(clip.info))).to(self.device))
                  for clip in clips]
        per_frame = self.frame_scores(torch.cat(pixels)).split([len(p) for p in pixels])
        return [Score(float(s.double().mean()), {"frames": len(s), "frame_scores": s.tolist()}) for s in per_frame]
