"""HunyuanVideo-I2V (diffusers' HunyuanVideoImageToVideoPipeline, hunyuanvideo-community/HunyuanVideo-I2V);
FramePack, on the same architecture, is in framepack.py."""

from __future__ import annotations

from .base import Baseline, C
from .tokenizers import local_tokenizer


class HunyuanI2V(Baseline):
    family = "hunyuan"
    pipeline = "HunyuanVideoImageToVideoPipeline"

    def components(self, size: str, transformer) -> dict:
        cfg = transformer.config
        text_encoder, self._image_tokens = C.llava_encoder(size, cfg.text_embed_dim)
        processor_size = text_encoder.config.vision_config.image_size
        return {
            "transformer": transformer,
            "vae": C.hunyuan_vae(size, cfg.out_channels),
            "text_encoder": text_encoder,
            "tokenizer": local_tokenizer(1024),
            "text_encoder_2": C.clip_text_encoder(size, cfg.pooled_projection_dim),
            "tokenizer_2": local_tokenizer(77),
            "image_processor": C.CLIPImageProcessor(size={"shortest_edge": processor_size},
                                                    crop_size={"height": processor_size, "width": processor_size}),
        }

    def output_frames(self, sampling, transformer_config=None) -> int:
        # With latent-concat conditioning the pipeline drops the 4 frames decoded from the image latent.
        cond = (transformer_config or {}).get("image_condition_type", "latent_concat")
        return int(sampling["num_frames"]) - (4 if cond == "latent_concat" else 0)

    def forwards_per_step(self, sampling) -> int:
        return 2 if float(sampling.get("true_cfg_scale", 1.0)) > 1.0 else 1

    def local_tokenizer_kwargs(self, pipe, settings) -> dict:
        # The real template places 576 image tokens after 5 template tokens of the real Llama tokenizer; with
        # a local tokenizer the template is plain and the image tokens sit right after the first token.
        n = (pipe.text_encoder.config.vision_config.image_size // pipe.text_encoder.config.vision_config.patch_size) ** 2
        text = int(settings["sampling"].get("max_sequence_length", 256))
        return {"prompt_template": {"template": "{}", "crop_start": 0, "image_emb_start": 1,
                                    "image_emb_end": 1 + n, "image_emb_len": n},
                "max_sequence_length": text + n + 1}
