"""EasyAnimateV5.1-12b InP (diffusers' EasyAnimateInpaintPipeline, alibaba-pai/EasyAnimateV5.1-12b-zh-InP-diffusers):
image-to-video as inpainting of all frames but the first."""

from __future__ import annotations

from .base import Baseline, C
from .tokenizers import local_tokenizer


class EasyAnimate(Baseline):
    family = "easyanimate"
    pipeline = "EasyAnimateInpaintPipeline"

    def components(self, size: str, transformer) -> dict:
        cfg = transformer.config
        return {
            "transformer": transformer,
            "vae": C.magvit_vae(size, cfg.out_channels),
            "text_encoder": C.qwen2vl_encoder(size, cfg.text_embed_dim),
            "tokenizer": local_tokenizer(512),
        }

    def call_kwargs(self, pipe, image, prompt, height, width, settings) -> dict:
        # Image-to-video = inpainting a clip whose first frame is kept (mask 0) and the rest generated (mask 255).
        from diffusers.pipelines.easyanimate.pipeline_easyanimate_inpaint import get_image_to_video_latent

        kwargs = super().call_kwargs(pipe, image, prompt, height, width, settings)
        image = kwargs.pop("image")
        video, mask = get_image_to_video_latent([image], None, int(kwargs["num_frames"]), (height, width))
        return {**kwargs, "video": video, "mask_video": mask}
