"""The seven baselines: a decorator registry of `Baseline` entries, one per model of the paper.

An entry knows its diffusers pipeline, checkpoints, the sampling settings of REFERENCE §3 (defaults that
`cfg.model` overrides key by key), output fps, how the input image is sized, its ASM preset, and how to turn
(image, prompt, settings) into the pipeline's call. It builds the pipeline three ways (`weights`):
  pretrained  from_pretrained of the hub ids or local folders in the config;
  random      the real-size architecture with random weights and a local tokenizer (GPU dry runs, planning);
  tiny        the same pipeline class at toy size, built offline (tests, the smoke run).
"""

from __future__ import annotations

import copy
import inspect
import os
from collections.abc import Mapping
from pathlib import Path

import torch
from PIL import Image

from ..errors import SetupError
from ..registry import Registry
from ..runs import to_plain
from . import components as C
from .sizing import fit_image, target_size
from .tokenizers import local_tokenizer

MODELS: Registry = Registry("model.baseline")
WEIGHTS = ("pretrained", "random", "tiny")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
SEED_MODES = ("fixed", "per_sample")  # fixed: every sample uses the base seed (official FramePack, Wan2.1 scripts)


class WeightsNotFoundError(SetupError, RuntimeError):
    """Pretrained weights are neither in a local folder nor in the Hugging Face cache (and the hub is offline)."""


register_model = MODELS.register


def get_baseline(name: str) -> Baseline:
    """The registry entry for a baseline name (a `-tiny` suffix is accepted: same entry, tiny weights)."""
    return MODELS.lookup(name.removesuffix("-tiny"))()


def _merge(base: dict, override: Mapping) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        out[key] = _merge(out[key], value) if isinstance(out.get(key), dict) and isinstance(value, Mapping) else value
    return out


class Baseline:
    """One baseline. Subclasses set the class attributes and the family-specific hooks below."""

    name: str = ""
    family: str = ""
    pipeline: str = ""
    checkpoint: str = ""
    extra_checkpoints: dict[str, str] = {}  # config key -> hub id of separately published components
    asm_preset: str = ""
    fps: int = 24
    sizing: dict = {}
    sampling: dict = {}
    scheduler: dict = {}  # class + kwargs of the scheduler built for random/tiny weights
    memory: dict = {"cpu_offload": False, "vae_tiling": False}
    seed_mode: str = "per_sample"
    # How frames become the MP4: float [0, 1] -> uint8 by "round" or "truncate" (the official scripts' astype),
    # then H.264 at this CRF (imageio's quality q maps to crf int((1 - q/10) * 51)).
    video: dict = {"crf": 18, "uint8": "round"}

    # -- settings --------------------------------------------------------------------------------------------

    def defaults(self) -> dict:
        """The REFERENCE §3 settings as a `cfg.model` dict."""
        return {"name": self.name, "baseline": self.name, "family": self.family, "pipeline": self.pipeline,
                "checkpoint": self.checkpoint, **self.extra_checkpoints, "weights": "pretrained",
                "asm_preset": self.asm_preset, "dtype": "bfloat16", "fps": self.fps, "sizing": dict(self.sizing),
                "sampling": copy.deepcopy(self.sampling), "memory": dict(self.memory), "seed": None,
                "seed_mode": self.seed_mode, "video": dict(self.video)}

    def settings(self, model_cfg: Mapping | None = None) -> dict:
        """Defaults overridden key by key by `cfg.model` (a Hydra DictConfig or a plain dict)."""
        settings = _merge(self.defaults(), to_plain(model_cfg or {}))
        if settings["weights"] not in WEIGHTS:
            raise ValueError(f"model.weights: expected one of {WEIGHTS}, got {settings['weights']!r}")
        if settings["dtype"] not in DTYPES:
            raise ValueError(f"model.dtype: expected one of {list(DTYPES)}, got {settings['dtype']!r}")
        if settings["video"]["uint8"] not in ("round", "truncate"):
            raise ValueError(f"model.video.uint8: expected round | truncate, got {settings['video']['uint8']!r}")
        if settings["seed_mode"] not in SEED_MODES:
            raise ValueError(f"model.seed_mode: expected one of {SEED_MODES}, got {settings['seed_mode']!r}")
        self.check_sampling(settings["sampling"])
        return settings

    def check_sampling(self, sampling: Mapping) -> None:
        """Reject frame counts the pipeline would silently change."""
        n = int(sampling["num_frames"])
        if (n - 1) % 4:
            raise ValueError(f"model.sampling.num_frames={n}: must be 4k+1 (the VAE compresses time by 4)")

    def output_frames(self, sampling: Mapping, transformer_config: Mapping | None = None) -> int:
        """Frames in the video the pipeline returns for these settings."""
        return int(sampling["num_frames"])

    def denoising_calls(self, sampling: Mapping) -> int:
        """Transformer denoising steps per video (FramePack runs the schedule once per section)."""
        return int(sampling["num_inference_steps"])

    def forwards_per_step(self, sampling: Mapping) -> int:
        """Transformer forwards per step: 2 with classifier-free guidance (cond + uncond), else 1."""
        return 2 if float(sampling.get("guidance_scale", 1.0)) > 1.0 else 1

    def computed_fraction(self, settings: Mapping, assumed: float) -> float:
        """Share of transformer calls that run the block stack (below 1 only with a step cache)."""
        return 1.0

    # -- building --------------------------------------------------------------------------------------------

    def pipeline_class(self):
        import diffusers

        return getattr(diffusers, self.pipeline)

    def build(self, settings: Mapping, device: str | torch.device = "cpu"):
        """The diffusers pipeline for `settings` (see `settings()`), weights as `settings['weights']` says."""
        dtype = DTYPES[settings["dtype"]]
        if settings["weights"] == "pretrained":
            pipe = self.load_pretrained(settings, dtype)
        else:
            size = "real" if settings["weights"] == "random" else "tiny"
            with C.building(device, dtype):
                parts = self.components(size, self.build_transformer(size, dtype, device))
            # Built outside the context: scheduler tables stay float32 on the CPU.
            pipe = self.pipeline_class()(**parts, scheduler=self.make_scheduler(self.scheduler))
        sched = (settings.get("sampling") or {}).get("scheduler")
        if sched:
            pipe.scheduler = self.make_scheduler(sched, pipe.scheduler.config)
        return pipe

    def build_transformer(self, size: str, dtype: torch.dtype, device: str | torch.device):
        from .architectures import build_transformer

        return build_transformer(self.family, size, dtype, device)

    def architecture_config(self, size: str) -> dict:
        """Constructor kwargs of this baseline's transformer at `size` ("real" | "tiny"); newer baselines override."""
        from .architectures import transformer_config

        return transformer_config(self.family, size)

    def make_scheduler(self, spec: Mapping, base_config: Mapping | None = None):
        import diffusers

        spec = dict(spec)
        cls = getattr(diffusers, spec.pop("class"))
        return cls.from_config(dict(base_config or {}), **spec) if base_config else cls(**spec)

    def components(self, size: str, transformer) -> dict:
        """Pipeline components except the scheduler, sized to match `transformer` (random weights)."""
        raise NotImplementedError

    def pretrained_ids(self, settings: Mapping) -> dict[str, str]:
        """Config key -> hub id or local folder of every checkpoint this baseline loads."""
        return {"checkpoint": settings["checkpoint"], **{k: settings[k] for k in self.extra_checkpoints}}

    def load_pretrained(self, settings: Mapping, dtype: torch.dtype):
        ids = self.pretrained_ids(settings)
        require_weights(ids, self.name)
        try:
            return self.from_pretrained(settings, dtype)
        except (OSError, ValueError) as exc:
            raise WeightsNotFoundError(_missing_message(self.name, ids) + f"\n(loader said: {exc})") from exc

    def from_pretrained(self, settings: Mapping, dtype: torch.dtype):
        return self.pipeline_class().from_pretrained(settings["checkpoint"], torch_dtype=dtype)

    # -- calling ---------------------------------------------------------------------------------------------

    def prepare_image(self, image: Image.Image, settings: Mapping) -> tuple[Image.Image, int, int]:
        height, width = target_size(settings["sizing"], image.width, image.height)
        return fit_image(image, height, width), height, width

    def call_kwargs(self, pipe, image: Image.Image, prompt: str, height: int, width: int, settings: Mapping) -> dict:
        """Keyword arguments of the pipeline call: the sampling settings it accepts, plus image/prompt/size."""
        sampling = {k: v for k, v in settings["sampling"].items() if k != "scheduler"}
        accepted = inspect.signature(pipe.__call__).parameters
        unknown = sorted(k for k in sampling if k not in accepted)
        if unknown:
            raise ValueError(f"model.sampling: {unknown} are not parameters of {self.pipeline}.__call__")
        kwargs = {**sampling, "image": image, "prompt": prompt, "height": height, "width": width, "output_type": "np"}
        if settings["weights"] != "pretrained":
            kwargs.update(self.local_tokenizer_kwargs(pipe, settings))
        return kwargs

    def local_tokenizer_kwargs(self, pipe, settings: Mapping) -> dict:
        """Extra call arguments that random/tiny builds need because their tokenizer is not the real one."""
        return {}


def require_weights(ids: Mapping[str, str], model: str) -> None:
    """Fail before any loading when the hub is offline and a checkpoint is neither a folder nor cached."""
    if not _hub_offline():
        return
    from huggingface_hub import snapshot_download

    missing = {}
    for key, repo in ids.items():
        if Path(repo).expanduser().is_dir():
            continue
        try:
            snapshot_download(repo, local_files_only=True)
        except Exception:  # any lookup failure means: not usable offline
            missing[key] = repo
    if missing:
        raise WeightsNotFoundError(_missing_message(model, missing))


def _hub_offline() -> bool:
    return any(os.environ.get(v, "").lower() in ("1", "true", "yes") for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def _missing_message(model: str, ids: Mapping[str, str]) -> str:
    lines = [f"weights for model {model!r} are not available offline. Download them, e.g.:"]
    lines += [f"  hf download {repo} --local-dir DIR    # then model.{key}=DIR" for key, repo in ids.items()]
    tiny = model.removesuffix("-tiny") + "-tiny"
    lines.append(f"or set model.<key>=/local/folder (Hydra override); for a dry run without weights use "
                 f"model={tiny} (`make eval MODEL={tiny}`).")
    return "\n".join(lines)


# ---- Wan2.1 and SkyReels-V2 (Wan architecture) ----------------------------------------------------------------

class _WanLike(Baseline):
    image_encoder_projection = False
    uses_image_encoder = True

    def components(self, size: str, transformer) -> dict:
        cfg = transformer.config
        out = {
            "transformer": transformer,
            "vae": C.wan_vae(size, cfg.out_channels),
            "text_encoder": C.umt5_encoder(size, cfg.text_dim),
            "tokenizer": local_tokenizer(512),
        }
        if self.uses_image_encoder:
            encoder, processor = C.clip_vision_encoder(size, cfg.image_dim, self.image_encoder_projection)
            out.update(image_encoder=encoder, image_processor=processor)
        return out

    def from_pretrained(self, settings: Mapping, dtype: torch.dtype):
        from diffusers import AutoencoderKLWan

        ckpt = settings["checkpoint"]
        extra = {"vae": AutoencoderKLWan.from_pretrained(ckpt, subfolder="vae", torch_dtype=torch.float32)}
        if self.uses_image_encoder:  # the image tower runs in float32, as in the official scripts
            from transformers import CLIPVisionModel, CLIPVisionModelWithProjection

            cls = CLIPVisionModelWithProjection if self.image_encoder_projection else CLIPVisionModel
            extra["image_encoder"] = cls.from_pretrained(ckpt, subfolder="image_encoder", dtype=torch.float32)
        return self.pipeline_class().from_pretrained(ckpt, torch_dtype=dtype, **extra)


UNIPC_FLOW = {"class": "UniPCMultistepScheduler", "prediction_type": "flow_prediction", "use_flow_sigmas": True,
              "num_train_timesteps": 1000}


@register_model("wan2.1")
class Wan21(_WanLike):
    family = "wan"
    pipeline = "WanImageToVideoPipeline"
    checkpoint = "Wan-AI/Wan2.1-I2V-14B-480P-Diffusers"
    asm_preset = "wan2.1"
    fps = 16
    sizing = {"mode": "max_area", "max_area": 480 * 832, "multiple": 16}
    # Guidance 1.0 as the official batch script (REFERENCE §8): one forward per step. CFG 5: model=wan2.1-cfg5.
    sampling = {"num_frames": 81, "num_inference_steps": 40, "guidance_scale": 1.0,
                "scheduler": {"class": "UniPCMultistepScheduler", "flow_shift": 3.0}}
    scheduler = {**UNIPC_FLOW, "flow_shift": 3.0}
    seed_mode = "fixed"  # the official script uses one seed per run for every sample
    video = {"crf": 10, "uint8": "truncate"}  # imageio quality 8


@register_model("skyreels-v2-i2v")
class SkyReelsV2I2V(_WanLike):
    family = "skyreels"
    pipeline = "SkyReelsV2ImageToVideoPipeline"
    checkpoint = "Skywork/SkyReels-V2-I2V-14B-540P-Diffusers"
    asm_preset = "skyreels-v2-i2v"
    image_encoder_projection = True
    fps = 24
    # Official script: resize + center crop to 544x960, swapped to 960x544 for portrait images.
    sizing = {"mode": "fixed", "height": 544, "width": 960, "follow_orientation": True}
    sampling = {"num_frames": 97, "num_inference_steps": 50, "guidance_scale": 5.0,
                "scheduler": {"class": "UniPCMultistepScheduler", "flow_shift": 5.0}}
    scheduler = {**UNIPC_FLOW, "flow_shift": 5.0}


@register_model("skyreels-v2-df")
class SkyReelsV2DF(SkyReelsV2I2V):
    family = "skyreels-df"
    pipeline = "SkyReelsV2DiffusionForcingImageToVideoPipeline"
    checkpoint = "Skywork/SkyReels-V2-DF-14B-540P-Diffusers"
    asm_preset = "skyreels-v2-df"
    uses_image_encoder = False
    sampling = {**SkyReelsV2I2V.sampling, "ar_step": 0, "base_num_frames": 97}

    def call_kwargs(self, pipe, image, prompt, height, width, settings) -> dict:
        return {"fps": int(settings["fps"]), **super().call_kwargs(pipe, image, prompt, height, width, settings)}


# ---- HunyuanVideo-I2V and FramePack (HunyuanVideo architecture) ------------------------------------------------

HUNYUAN_FLOW = {"class": "FlowMatchEulerDiscreteScheduler", "shift": 7.0}


@register_model("hunyuan-i2v")
class HunyuanI2V(Baseline):
    family = "hunyuan"
    pipeline = "HunyuanVideoImageToVideoPipeline"
    checkpoint = "hunyuanvideo-community/HunyuanVideo-I2V"
    asm_preset = "hunyuan-i2v"
    fps = 24
    sizing = {"mode": "fixed", "height": 720, "width": 1280, "follow_orientation": True}
    sampling = {"num_frames": 129, "num_inference_steps": 50}
    scheduler = HUNYUAN_FLOW
    memory = {"cpu_offload": False, "vae_tiling": True}

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


# ---- EasyAnimate ------------------------------------------------------------------------------------------------

@register_model("easyanimate")
class EasyAnimate(Baseline):
    family = "easyanimate"
    pipeline = "EasyAnimateInpaintPipeline"
    checkpoint = "alibaba-pai/EasyAnimateV5.1-12b-zh-InP-diffusers"
    asm_preset = "easyanimate"
    fps = 8
    sizing = {"mode": "fixed", "height": 512, "width": 512}
    # The pipeline needs a negative prompt string under guidance; REFERENCE §3 names none, so it is empty.
    sampling = {"num_frames": 49, "num_inference_steps": 50, "guidance_scale": 5.0, "negative_prompt": ""}
    scheduler = {"class": "FlowMatchEulerDiscreteScheduler", "shift": 3.0}

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
