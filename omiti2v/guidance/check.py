"""The guidance group's config rule: one `error:` line per problem, before anything loads (omiti2v.config_check).

A method is refused where it cannot act as written: an unknown method or a strength outside its knob's range; a
baseline whose transformer call the adapter does not know (FramePack's distilled guidance has no unconditional
pass at all); the perturbed-pass methods (stg, pag) under `generation.compile=regional` (their layer-skip hooks
are installed and removed around one pass each step, which a compiled block graph would not see); and
context-parallel generation (the adapter is untested there).
"""

from __future__ import annotations

from collections.abc import Iterator

from omegaconf import DictConfig, OmegaConf

from omiti2v.guidance.config import PERTURBING, GuidanceConfig, strength_problem

# Pipelines whose transformer call the adapter knows: text condition in `encoder_hidden_states`, the image latents
# concatenated on the input channels after the noisy latents, a pipeline `encode_prompt` for the negative prompt.
GUIDABLE_PIPELINES = ("WanImageToVideoPipeline", "SkyReelsV2ImageToVideoPipeline")
# stg / pag also need diffusers' layer-skip registries to know the blocks (diffusers.hooks): Wan's only.
PERTURBABLE_PIPELINES = ("WanImageToVideoPipeline",)
WHY_NOT = {  # for the methods built on an unconditional pass
    "framepack": "FramePack samples with distilled guidance (the scale is an input of its one conditional pass), so "
                 "there is no unconditional pass to guide with",
}


def _plain(cfg: DictConfig, key: str):
    value = OmegaConf.select(cfg, key, default=None)
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


def guidance_violations(cfg: DictConfig) -> Iterator[str]:
    """The problems of `cfg.guidance` with the rest of the run's config (nothing for method none)."""
    guidance = _plain(cfg, "guidance") or {}
    method = guidance.get("method", "none")
    problem = strength_problem(method, guidance.get("strength"))
    if problem:
        yield problem
        return
    if method == "none":
        return
    try:
        GuidanceConfig.from_hydra(guidance)
    except (TypeError, ValueError) as exc:
        yield str(exc)
        return
    name = guidance.get("name", method)
    model = _plain(cfg, "model") or {}
    from omiti2v.models import MODELS, baseline_for

    if (model.get("baseline") or model.get("name")) in MODELS:  # an unknown baseline is model.baseline's error
        baseline = baseline_for(model)
        if baseline.pipeline not in GUIDABLE_PIPELINES:
            known = f"the guidance adapter knows the transformer call of {' and '.join(GUIDABLE_PIPELINES)} only"
            reason = WHY_NOT.get(baseline.family, known) if method not in PERTURBING else known
            yield f"guidance={name}: model={model.get('name')} ({baseline.pipeline}) cannot take it: {reason}"
        elif method in PERTURBING and baseline.pipeline not in PERTURBABLE_PIPELINES:
            yield (f"guidance={name}: model={model.get('name')} ({baseline.pipeline}) cannot take it: diffusers' "
                   "layer-skip hooks know the blocks of WanTransformer3DModel only")
    if method in PERTURBING and (_plain(cfg, "generation.compile") or "none") != "none":
        yield (f"guidance={name} perturbs blocks with hooks installed around one pass per step: run it with "
               "generation.compile=none")
    if int(_plain(cfg, "parallel.context") or 1) > 1:
        yield f"guidance={name} is not supported with parallel.context > 1: generate it with parallel.context=1"


config_problems = guidance_violations  # collected by omiti2v.config_check (its RULE_OWNERS)
