"""FramePack and FramePack-F1 (HunyuanVideo architecture) as the official inference scripts run them:
FramePack's flow-matching UniPC (`sampling.scheduler: framepack_unipc`, or diffusers' `euler`), TeaCache on
(`teacache: {enabled, rel_l1_thresh}`), seed 31337 for every sample (`seed_mode: fixed`), the input image resized
and center-cropped to the nearest 640 bucket by the official rule, SigLIP given that image as uint8
(`image_input: official`), and the official precision (`precision`: the text encoders, SigLIP and the VAE in
float16, the transformer's output projection in float32)."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from PIL import Image

from .base import DTYPES, Baseline, C
from .settings import check_precision
from .sizing import framepack_fit_image, target_size
from .tokenizers import local_tokenizer

SCHEDULERS = ("framepack_unipc", "euler")
PIPELINE_COMPONENTS = ("vae", "text_encoder", "text_encoder_2", "image_encoder")  # the transformer: model.dtype


class FramePack(Baseline):
    family = "framepack"
    pipeline = "HunyuanVideoFramepackPipeline"
    extra_checkpoints = ("transformer", "image_encoder")
    extra_keys = ("teacache", "image_input", "precision")

    def settings(self, model_cfg: Mapping | None = None) -> dict:
        settings = super().settings(model_cfg)
        if settings["sampling"].get("scheduler") not in SCHEDULERS:
            raise ValueError(f"model.sampling.scheduler: expected one of {SCHEDULERS}, "
                             f"got {settings['sampling'].get('scheduler')!r}")
        if (settings.get("teacache") or {}).get("enabled") and self.forwards_per_step(settings["sampling"]) > 1:
            raise ValueError("model.teacache counts one transformer call per step (official: cfg 1); disable it "
                             "(model.teacache.enabled=false) for true_cfg_scale > 1")
        check_precision(settings["precision"], PIPELINE_COMPONENTS)
        return settings

    def build(self, settings: Mapping, device: str | torch.device = "cpu"):
        """The pipeline with the configured sampler, image input and precision and, when enabled, TeaCache on its
        transformer."""
        from omiti2v.cache import TeaCacheConfig, apply_teacache
        from omiti2v.schedulers import FramePackUniPCScheduler

        from .official_inputs import use_uint8_siglip_input
        from .precision import apply_float32_output_projection, cast_components, component_dtypes

        sampling, precision = settings["sampling"], settings["precision"] or {}
        pipe = super().build({**settings, "sampling": {k: v for k, v in sampling.items() if k != "scheduler"}}, device)
        if settings["weights"] != "pretrained":
            cast_components(pipe, component_dtypes(precision, DTYPES))
        if precision.get("output_projection") == "float32":
            apply_float32_output_projection(pipe.transformer)
        if settings["image_input"] == "official":
            use_uint8_siglip_input(pipe)
        if sampling["scheduler"] == "framepack_unipc":
            pipe.scheduler = FramePackUniPCScheduler(timestep_dtype=settings["dtype"])
        teacache = settings.get("teacache") or {}
        if teacache.get("enabled"):
            apply_teacache(pipe.transformer, TeaCacheConfig(rel_l1_thresh=float(teacache["rel_l1_thresh"]),
                                                            num_steps=int(sampling["num_inference_steps"])))
        return pipe

    def prepare_image(self, image: Image.Image, settings: Mapping) -> tuple[Image.Image, int, int]:
        height, width = target_size(settings["sizing"], image.width, image.height)
        return framepack_fit_image(image, height, width), height, width

    def sections(self, sampling: Mapping) -> int:
        return max(1, round((int(sampling["num_frames"]) - 1) / (int(sampling["latent_window_size"]) * 4)))

    def check_sampling(self, sampling) -> None:
        window, n = int(sampling["latent_window_size"]), int(sampling["num_frames"])
        if (n - 1) % (window * 4):
            raise ValueError(f"model.sampling.num_frames={n}: FramePack makes 1 + sections * latent_window_size * 4 "
                             f"frames (latent_window_size={window}); e.g. {1 + window * 4 * self.sections(sampling)}")

    def denoising_calls(self, sampling) -> int:
        return int(sampling["num_inference_steps"]) * self.sections(sampling)

    def forwards_per_step(self, sampling) -> int:
        return 2 if float(sampling.get("true_cfg_scale", 1.0)) > 1.0 else 1

    def computed_fraction(self, settings: Mapping, assumed: float) -> float:
        """Share of transformer calls that run the block stack: `assumed` under TeaCache, else 1."""
        return assumed if (settings.get("teacache") or {}).get("enabled") else 1.0

    def call_kwargs(self, pipe, image, prompt, height, width, settings) -> dict:
        kwargs = super().call_kwargs(pipe, image, prompt, height, width, settings)
        # diffusers counts sections as ceil(num_frames / ((window - 1) * 4 + 1)); ask for exactly `sections`.
        window = int(kwargs["latent_window_size"])
        kwargs["num_frames"] = self.sections(settings["sampling"]) * ((window - 1) * 4 + 1)
        if settings["sampling"]["scheduler"] == "framepack_unipc":
            # The official unshifted grid is torch.linspace in float32; the pipeline's default, numpy's float64
            # linspace cast to float32, differs in the last bit of some sigmas.
            kwargs["sigmas"] = torch.linspace(1.0, 0.0, int(kwargs["num_inference_steps"]) + 1)[:-1].tolist()
        return kwargs

    def components(self, size: str, transformer) -> dict:
        cfg = transformer.config
        image_encoder, feature_extractor = C.siglip_vision_encoder(size, cfg.image_proj_dim)
        return {
            "transformer": transformer,
            "vae": C.hunyuan_vae(size, cfg.out_channels),
            "text_encoder": C.llama_encoder(size, cfg.text_embed_dim),
            "tokenizer": local_tokenizer(512),
            "text_encoder_2": C.clip_text_encoder(size, cfg.pooled_projection_dim),
            "tokenizer_2": local_tokenizer(77),
            "image_encoder": image_encoder,
            "feature_extractor": feature_extractor,
        }

    def local_tokenizer_kwargs(self, pipe, settings) -> dict:
        # The default template crops 95 tokens counted with the real Llama tokenizer; a local one has no template.
        return {"prompt_template": {"template": "{}", "crop_start": 0}}

    def from_pretrained(self, settings, dtype):
        """Each component loaded straight in its configured dtype (no double rounding through `dtype`)."""
        from diffusers import HunyuanVideoFramepackTransformer3DModel
        from transformers import SiglipImageProcessor, SiglipVisionModel

        from .precision import component_dtypes

        dtypes = {"default": dtype, **component_dtypes(settings["precision"], DTYPES)}
        transformer = HunyuanVideoFramepackTransformer3DModel.from_pretrained(settings["transformer"], torch_dtype=dtype)
        feature_extractor = SiglipImageProcessor.from_pretrained(settings["image_encoder"], subfolder="feature_extractor")
        image_encoder = SiglipVisionModel.from_pretrained(settings["image_encoder"], subfolder="image_encoder",
                                                          dtype=dtypes.get("image_encoder", dtype))
        return self.pipeline_class().from_pretrained(settings["checkpoint"], transformer=transformer,
                                                     feature_extractor=feature_extractor, image_encoder=image_encoder,
                                                     torch_dtype=dtypes)


class FramePackF1(FramePack):
    """Same builders; the F1 transformer, vanilla (forward) sampling, 24 fps and its preset come from the YAML."""
