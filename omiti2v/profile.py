"""How far a composed run config is from the official AlignVid procedure (docs/official-procedure.md).

`deviations(cfg)` names every remaining difference, judge, scorers and generation, as plain sentences that
go into summary.json (`deviations`); an empty list means none is known. The `paper` profile
(conf/profile/paper.yaml) sets what it can; the rest are differences the harness cannot remove (named with
their reason) or choices a user overrode.
"""

from __future__ import annotations

import importlib.util
import inspect
from collections.abc import Mapping

from omegaconf import DictConfig

from .asm.presets import DEFAULT_GAMMA, get_preset
from .costs import published_costs
from .judge.options import FAST, OFFICIAL, PARITY, modes_of
from .paper_settings import official_model, paper_judge
from .video import write_video

PAPER_JUDGE = paper_judge()  # model, fps, max_pixels, max_new_tokens, metadata_fps (omiti2v/paper_settings.py)
PAPER_METADATA_FPS = PAPER_JUDGE.pop("metadata_fps")
WAN, FRAMEPACK = official_model("wan2.1"), official_model("framepack")  # the official scripts' settings
WRITE_VIDEO_CRF = inspect.signature(write_video).parameters["crf"].default  # without model.video.crf
PAPER_FAMILIES = {"wan", "framepack", "hunyuan", "skyreels", "skyreels-df", "easyanimate"}  # the paper's baselines
OFFICIAL_CRF = {"wan": WAN["video"]["crf"], "framepack": FRAMEPACK["video"]["crf"]}
# The dtypes the official scripts load each component in (`model.precision`; the Wan transformer: float32 weights
# run under bf16 autocast; FramePack's output projection in float32 on a float32 input).
OFFICIAL_PRECISION = {"wan": WAN["precision"], "framepack": FRAMEPACK["precision"]}
# Peak GPU memory of one Wan2.1-14B step at 480x832x81 with the official precision, as measured (it fits one
# 80 GB GPU, so the paper profile runs it with model-level CPU offload).
WAN_FLOAT32_PEAK = f"{published_costs()['models']['wan2.1']['float32_peak_gb']} GB"
VBENCH_BACKENDS = {"flow_backend": "raft", "aesthetic_quality.clip": "openai/clip-vit-large-patch14",
                   "aesthetic_quality.head": "laion", "imaging_quality.musiq": "spaq", "dynamic_degree.dtype": "float32"}


def _get(node: Mapping | None, dotted: str, default=None):
    for key in dotted.split("."):
        if not isinstance(node, Mapping) or key not in node:
            return default
        node = node[key]
    return node


def judge_deviations(judge: Mapping) -> list[str]:
    out = []
    for key, paper in PAPER_JUDGE.items():
        value = _get(judge, key)
        if value is not None and (value != paper if isinstance(paper, str) else float(value) != paper):
            out.append(f"judge {key} {value}; the paper's judge uses {paper}")
    if _get(judge, "min_pixels") is not None:
        out.append(f"judge min_pixels {judge['min_pixels']}; official: qwen-vl-utils' default (128*28*28)")
    mode = _get(judge, "mode", OFFICIAL)
    if mode == FAST:
        out.append("judge mode fast (P(yes) from one forward); official: greedy text answers parsed by extract_yes_no")
    if PARITY in modes_of(mode):
        out.append("judge mode parity decodes a video's questions side by side behind one shared prefix, samples "
                   "batched by free memory (token-identical to one generate per question in float32 tests; in bf16 "
                   "rounding parts near-ties, so replies depend on the batch and the GPU); official: one generate "
                   "per question (judge.mode=official)")
    metadata_fps = _get(judge, "metadata_fps")
    if metadata_fps is None or float(metadata_fps) != PAPER_METADATA_FPS:
        told = "the true sampled fps" if metadata_fps is None else f"fps {metadata_fps}"
        out.append(f"judge temporal positions from {told}; official: fps {PAPER_METADATA_FPS} assumed by transformers 4.50 "
                   "(second_per_grid_ts 1.0)")
    if _get(judge, "missing_video", "wrong") != "exclude":
        out.append("a sample without a video counts as wrong; official: excluded from every mean and listed")
    if importlib.util.find_spec("decord") is None:
        out.append("judge frames decoded with PyAV (decord not installed); official: decord")
    return out


def scorer_deviations(scorer: Mapping) -> list[str]:
    out = []
    if _get(scorer, "aspect_resize.mode", "none") == "paper":
        out.append("scorer resize ratio from the first video in sorted id order; the official evaluate_i2v.py took "
                   "the unsorted filesystem listing (same ratio whenever all videos share one aspect)")
    else:
        out.append("scorers see native-size videos; official: evaluate_i2v.py resize to one ratio, max(side, 512), "
                   "bilinear, mp4v re-encode")
    metrics = set(_get(scorer, "metrics", []) or [])
    for key, paper in VBENCH_BACKENDS.items():
        metric = key.split(".")[0]
        value = _get(scorer, key)
        if (metric in metrics or "." not in key) and value is not None and str(value) != paper:
            out.append(f"scorer {key} {value}; VBench: {paper}")
    return out


def _precision_lines(label: str, model: Mapping, official: Mapping[str, str]) -> list[str]:
    """One line per component of `official` whose `model.precision` is another dtype."""
    precision = _get(model, "precision", {}) or {}
    return [f"{label} {part} in {precision.get(part) or 'model.dtype'}; official: {dtype}"
            for part, dtype in official.items() if precision.get(part) != dtype]


def generation_deviations(model: Mapping, seed: int, device: str = "auto") -> list[str]:
    """`seed`: the run's base seed (omiti2v.seeds.base_seed); `device`: the run's `device` (a generator on the
    device draws CUDA noise only on a CUDA run)."""
    from .devices import resolve_device
    from .models import baseline_for

    family = baseline_for(model).family  # behaviour, not a config value: it lives on the registry entry
    sampling = _get(model, "sampling", {})
    seed_mode = _get(model, "seed_mode", "per_sample")
    noise = _get(model, "noise", "cpu")
    out = []
    if family == "wan":
        official = WAN["sampling"]["guidance_scale"]
        guidance = float(_get(sampling, "guidance_scale", official))
        if guidance != official:
            out.append(f"Wan guidance_scale {guidance:g}; the official batch script runs {official}")
        if seed_mode != "fixed":
            out.append("Wan seed derived per sample; official: one seed per run for every sample")
        out.append("Wan base seed set in the config; official: --base_seed -1 draws a random seed per run, which no "
                   "run can repeat")
        solver, official = _get(sampling, "scheduler", {}) or {}, WAN["sampling"]["scheduler"]
        if solver.get("class") != official["class"] or float(solver.get("flow_shift", 0)) != official["flow_shift"]:
            out.append(f"Wan sampler {solver.get('class')}, flow_shift {solver.get('flow_shift')}; official: Wan's "
                       f"flow-matching UniPC, shift {official['flow_shift']:g}")
        if _get(model, "image_input") != "official":
            out.append("Wan image input cover-resized and centre-cropped (diffusers); official: the whole image "
                       "stretched by bicubic interpolation for the VAE and for CLIP")
        if noise != "device":
            out.append("Wan noise from a CPU generator; official: a CUDA generator per sample (same seed, other noise)")
        elif not resolve_device(device).startswith("cuda"):
            out.append("Wan noise drawn on the CPU (a CPU run); official: a CUDA generator, whose numbers no CPU "
                       "run can reproduce")
        if (_get(model, "precision", {}) or {}).get("transformer") != OFFICIAL_PRECISION["wan"]["transformer"]:
            out.append(f"Wan transformer weights in model.dtype; official: float32 weights under bf16 autocast "
                       f"(model.precision.transformer=float32 with model.memory.cpu_offload=true: a {WAN_FLOAT32_PEAK} "
                       "peak at 480x832x81 on one 80 GB GPU)")
        out += _precision_lines("Wan", model, {k: v for k, v in OFFICIAL_PRECISION["wan"].items() if k != "transformer"})
        out.append("Wan runs diffusers' implementation of the official network (same weights; kernels and internal "
                   "casts differ at rounding level, e.g. the official timestep embedding is computed in float64)")
    elif family == "framepack":
        scheduler = _get(sampling, "scheduler", "euler")
        if scheduler != FRAMEPACK["sampling"]["scheduler"]:
            out.append(f"FramePack sampler {scheduler}; official: FramePack's flow-matching UniPC (bh1)")
        enabled, threshold = _get(model, "teacache.enabled", False), _get(model, "teacache.rel_l1_thresh")
        official = FRAMEPACK["teacache"]["rel_l1_thresh"]
        if not enabled:
            out.append(f"FramePack TeaCache off; official: on, rel_l1_thresh {official}")
        elif threshold is None or float(threshold) != official:
            out.append(f"FramePack TeaCache rel_l1_thresh {threshold}; official: {official}")
        if seed_mode != "fixed" or seed != FRAMEPACK["seed"]:
            out.append(f"FramePack seed_mode {seed_mode}, seed {seed}; official: {FRAMEPACK['seed']} for every sample")
        if noise != "cpu":
            out.append("FramePack noise drawn on the run's device; official: a CPU generator")
        out.append("FramePack start-latent VAE posterior sample drawn from the seeded generator (diffusers pipeline); "
                   "official: from the unseeded global RNG, which no run can repeat")
        if _get(model, "image_input") != "official":
            out.append("FramePack SigLIP given the pipeline's float copy of the image; official: the uint8 image")
        out += _precision_lines("FramePack", model, OFFICIAL_PRECISION["framepack"])
        out.append("FramePack runs diffusers' implementation of the official network and sampling loop (same "
                   "weights; kernels and internal casts differ at rounding level)")
    elif family in PAPER_FAMILIES:
        out.append(f"{family}: official scripts not public: the diffusers pipeline with the published settings")
    else:
        out.append(f"{family}: not one of the paper's baselines: no official procedure to follow")
    crf = _get(model, "video.crf", WRITE_VIDEO_CRF)
    if family in OFFICIAL_CRF and int(crf) != OFFICIAL_CRF[family]:
        out.append(f"videos saved as H.264 crf {crf}; official {family}: crf {OFFICIAL_CRF[family]}")
    return out


def asm_deviations(model: Mapping, asm: Mapping, schedule: Mapping) -> list[str]:
    strategy = _get(asm, "strategy", "none")
    if strategy == "none" and _get(asm, "input_blur") is None:
        return []
    out = []
    preset = get_preset(str(_get(model, "asm_preset", _get(model, "name"))))
    for key in ("gamma_q", "gamma_k"):
        value = _get(asm, key)
        if value is not None and float(value) != getattr(preset, key):
            out.append(f"ASM {key} {value}; the paper's recipe: {getattr(preset, key):g} (gamma {DEFAULT_GAMMA})")
    for key in ("q_sites", "k_sites"):
        if _get(asm, key) is not None and tuple(asm[key]) != getattr(preset, key):
            out.append(f"ASM {key} {list(asm[key])}; the paper's recipe: {list(getattr(preset, key))}")
    if strategy == "energy":
        out.append("energy-based ASM: the paper's formula is not public; omiti2v/asm/energy.py defines one"
                   + (" (entropy estimated on strided queries)" if _get(asm, "energy_queries") else ""))
    if _get(schedule, "blocks") == "calibrated":
        out.append("BGS blocks from the harness's own calibration; the paper's calibration is not public")
    if _get(model, "baseline") == "framepack" and _get(schedule, "blocks") == "preset":
        out.append("FramePack: the paper's FramePack block list; the released fork runs F1's list unless its source "
                   "is edited as the script's comments ask")
    return out


def deviations(cfg: DictConfig | Mapping, generation: bool = True) -> list[str]:
    """Every known difference from the official procedure; `generation=False` for judged-only runs
    (leaderboard submissions bring their own videos)."""
    out = judge_deviations(_get(cfg, "judge", {})) + scorer_deviations(_get(cfg, "scorer", {}))
    if generation:
        from .models import baseline_for
        from .seeds import base_seed

        model = _get(cfg, "model", {})
        out += generation_deviations(model, base_seed(cfg, baseline_for(model).settings(model)),
                                     str(_get(cfg, "device", "auto")))
        out += asm_deviations(_get(cfg, "model", {}), _get(cfg, "asm", {}), _get(cfg, "schedule", {}))
        if _get(cfg, "guidance.method", "none") != "none":
            out.append(f"guidance {_get(cfg, 'guidance.name')} (strength {_get(cfg, 'guidance.strength')}) replaces "
                       "the pipeline's own CFG: a comparison method (docs/methods.md), not the paper's procedure")
        if _get(cfg, "generation.compile", "none") != "none":
            out.append(f"generation.compile={_get(cfg, 'generation.compile')}: compiled blocks, whose output differs "
                       "from eager by more than the bf16 noise floor (docs/performance.md); official: eager")
    return out


def profile_context(cfg: DictConfig | Mapping, generation: bool = True) -> dict:
    """The summary's profile fields: the profile's name, its deviations and the missing-video policy."""
    return {"profile": _get(cfg, "profile"), "deviations": deviations(cfg, generation),
            "missing_video": str(_get(cfg, "judge.missing_video", "wrong"))}
