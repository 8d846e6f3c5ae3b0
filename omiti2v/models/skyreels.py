"""SkyReels-V2 I2V and diffusion-forcing (DF) 14B 540P: the Wan architecture (arXiv 2504.13074; diffusers'
SkyReelsV2 pipelines and the Skywork/SkyReels-V2-*-14B-540P-Diffusers checkpoints)."""

from __future__ import annotations

from .wan import _WanLike


class SkyReelsV2I2V(_WanLike):
    family = "skyreels"
    pipeline = "SkyReelsV2ImageToVideoPipeline"
    image_encoder_projection = True


class SkyReelsV2DF(SkyReelsV2I2V):
    family = "skyreels-df"
    pipeline = "SkyReelsV2DiffusionForcingImageToVideoPipeline"
    uses_image_encoder = False

    def call_kwargs(self, pipe, image, prompt, height, width, settings) -> dict:
        return {"fps": int(settings["fps"]), **super().call_kwargs(pipe, image, prompt, height, width, settings)}
