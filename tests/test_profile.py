"""Profiles: paper and leaderboard compose for every model, and `deviations` names what differs from the
official procedure (docs/official-procedure.md) and nothing else.

The sentences live in omiti2v/profile.py alone: these tests check which deviations appear under which config
(a departure adds exactly one line, naming the value set and the official one read from its home), not their
wording."""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from omiti2v.asm.presets import get_preset
from omiti2v.models import baseline_for, model_settings
from omiti2v.paper_settings import paper_judge
from omiti2v.profile import PAPER_FAMILIES, deviations

CONF = Path(__file__).resolve().parents[1] / "conf"
MODELS = sorted(p.stem for p in (CONF / "model").glob("*.yaml"))
WAN, FRAMEPACK = model_settings("wan2.1"), model_settings("framepack")
LABEL = {"wan": "Wan", "framepack": "FramePack"}  # how a family's own lines start
# Differences no config removes under the paper profile: the base seed and diffusers' network (Wan); the start
# latent's posterior sample and diffusers' network (FramePack).
UNREMOVABLE = {"wan": 2, "framepack": 2}
NAMED_VARIANTS = {"wan2.1-cfg5": ["guidance_scale 5"]}  # model yamls that depart on purpose: their one extra line


def _compose(*overrides: str, name: str = "config"):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(name, overrides=list(overrides))


@cache
def _paper(model: str):
    return _compose(f"model={model}", "device=cuda")


def _paper_with(model: str, *overrides: str):
    """The paper profile's config for `model` with `overrides`: group choices composed by Hydra, values set on a
    copy of the composed config (the same result, without a composition per value)."""
    groups = [o for o in overrides if "." not in o.split("=")[0] and o.split("=")[0] != "device"]
    cfg = _compose(f"model={model}", "device=cuda", *groups) if groups else copy.deepcopy(_paper(model))
    for override in (o for o in overrides if o not in groups):
        key, value = override.removeprefix("++").split("=", 1)
        OmegaConf.update(cfg, key, yaml.safe_load(value), force_add=True)
    return cfg


def added(model: str, *overrides: str, generation: bool = True) -> list[str]:
    """The deviations that `overrides` add to the paper profile's for `model` (on a CUDA run)."""
    before = set(deviations(_paper(model), generation))
    return [d for d in deviations(_paper_with(model, *overrides), generation) if d not in before]


@pytest.mark.parametrize("model", MODELS)
def test_paper_profile_composes_for_every_model_with_only_the_unremovable_deviations(model):
    cfg = _compose(f"model={model}", "device=cuda")
    family = baseline_for(cfg.model).family
    assert cfg.profile == "paper" and cfg.judge.missing_video == "exclude" and cfg.judge.metadata_fps == 2.0
    assert cfg.scorer.aspect_resize.mode == "paper" and cfg.model.seed_mode == "fixed" and cfg.judge.mode == "official"
    assert cfg.run_name == f"omiti2v/{model}/scalar-paper"
    lines = deviations(cfg)
    scorer, own = lines[:1], lines[1:]
    assert len(scorer) == 1 and scorer[0].startswith("scorer resize ratio")  # the sorted listing: one line, always
    if family in LABEL:
        variant = NAMED_VARIANTS.get(model, [])
        assert len(own) == UNREMOVABLE[family] + (cfg.model.baseline == "framepack") + len(variant)  # block list: below
        assert all(d.startswith(LABEL[family]) for d in own)
        assert all(any(words in d for d in own) for words in variant)
    else:
        assert len(own) == 1 and own[0].startswith(f"{family}: ")
        assert ("official scripts not public" in own[0]) == (family in PAPER_FAMILIES)


def test_framepack_names_the_block_list_the_released_fork_does_not_run():
    """The paper's FramePack block list differs from what the fork runs by default; F1 runs F1's, the default."""
    framepack, f1 = deviations(_compose("model=framepack")), deviations(_compose("model=framepack-f1"))
    assert len(framepack) == len(f1) + 1
    assert [d for d in framepack if "block list" in d] and not [d for d in f1 if "block list" in d]


@pytest.mark.parametrize("mode", ["official", "parity", "fast", "both"])
def test_only_the_official_judge_mode_is_no_deviation(mode):
    """Both profiles judge in official mode; parity and fast (opt-in, for sweeps) each name how they differ. `both`
    reports parity's verdicts (fast only enters the agreement), so it names parity's difference."""
    for profile in ("paper", "leaderboard"):
        lines = [d for d in deviations(_compose("model=wan2.1", f"profile={profile}", f"judge.mode={mode}"))
                 if d.startswith("judge mode")]
        parity = [d for d in deviations(_compose("model=wan2.1", f"profile={profile}", "judge.mode=parity"))
                  if d.startswith("judge mode")]
        assert len(lines) == (mode != "official")
        assert lines == (parity if mode == "both" else [d for d in lines if mode in d])
    assert _compose("profile=leaderboard", "judge=qwen3-vl-8b").judge.mode == "official"


def test_smoke_config_uses_the_paper_profile():
    cfg = _compose(name="smoke")
    assert cfg.profile == "paper" and cfg.smoke and cfg.scorer.aspect_resize.mode == "paper"


JUDGE = paper_judge()
# (model, override, words the one added line must hold: the value set and the official one, from its home)
DEPARTURES = [
    ("wan2.1", "++model.sampling.guidance_scale=5.0", ["guidance_scale 5", str(WAN["sampling"]["guidance_scale"])]),
    ("wan2.1", "model.video.crf=18", ["crf 18", f"crf {WAN['video']['crf']}"]),
    ("wan2.1", "model.seed_mode=per_sample", ["per sample"]),
    ("wan2.1", "asm.gamma_k=1.5", ["gamma_k 1.5", f"{get_preset('wan2.1').gamma_k:g}"]),
    ("wan2.1", "judge.fps=4", ["fps 4", str(JUDGE["fps"])]),
    ("wan2.1", "judge.max_pixels=1000", ["max_pixels 1000", str(JUDGE["max_pixels"])]),
    ("wan2.1", "judge.metadata_fps=8", ["fps 8", str(JUDGE["metadata_fps"])]),
    ("wan2.1", "judge.missing_video=wrong", ["wrong", "excluded"]),
    ("wan2.1", "model.image_input=diffusers", ["diffusers"]),
    ("wan2.1", "model.noise=cpu", ["CPU generator"]),
    ("wan2.1", "device=cpu", ["CPU run"]),
    ("wan2.1", "model.precision.image_encoder=float32", ["image_encoder in float32",
                                                         WAN["precision"]["image_encoder"]]),
    ("wan2.1", "model.precision.transformer=null", ["model.dtype", WAN["precision"]["transformer"]]),
    ("wan2.1", "model.sampling.scheduler.class=UniPCMultistepScheduler",
     ["UniPCMultistepScheduler", f"shift {WAN['sampling']['scheduler']['flow_shift']:g}"]),
    ("wan2.1", "generation.compile=regional", ["generation.compile=regional"]),
    ("wan2.1", "guidance=cfg", ["cfg"]),
    ("framepack-f1", "++model.sampling.scheduler=euler", ["sampler euler"]),
    ("framepack-f1", "++model.teacache.rel_l1_thresh=0.1", ["rel_l1_thresh 0.1",
                                                            str(FRAMEPACK["teacache"]["rel_l1_thresh"])]),
    ("framepack", "model.teacache.enabled=false", ["off", str(FRAMEPACK["teacache"]["rel_l1_thresh"])]),
    ("framepack-f1", "model.seed=7", ["seed 7", str(FRAMEPACK["seed"])]),
    ("framepack-f1", "asm=energy", ["energy"]),
    ("framepack", "model.image_input=diffusers", ["float copy"]),
    ("framepack", "model.precision.vae=bfloat16", ["vae in bfloat16", FRAMEPACK["precision"]["vae"]]),
    ("framepack", "model.precision.output_projection=null", ["output_projection in model.dtype",
                                                             FRAMEPACK["precision"]["output_projection"]]),
    ("framepack", "model.noise=device", ["device"]),
    ("framepack", "model.video.crf=18", ["crf 18", f"crf {FRAMEPACK['video']['crf']}"]),
]


@pytest.mark.parametrize(("model", "override", "words"), DEPARTURES, ids=[d[1] for d in DEPARTURES])
def test_each_departure_from_the_official_procedure_adds_one_line_naming_it(model, override, words):
    lines = added(model, override)
    assert len(lines) == 1, lines
    assert all(w in lines[0] for w in words), (lines[0], words)


def test_judged_only_runs_name_no_generation_deviation():
    assert deviations(_compose("model=hunyuan-i2v", "asm=none"), generation=False) == \
        deviations(_compose("model=wan2.1", "asm=scalar", "model.video.crf=3"), generation=False)
    assert len(deviations(_compose("model=wan2.1"), generation=False)) == 1  # the scorers' sorted listing


def test_leaderboard_profile_names_exactly_its_three_choices():
    """The leaderboard profile is the paper's plus three stricter choices: its deviations are what those three
    overrides add to the paper profile, each one line, in place of the paper's scorer resize line."""
    cfg = _compose("profile=leaderboard")
    assert (cfg.profile, cfg.judge.missing_video, cfg.judge.metadata_fps) == ("leaderboard", "wrong", None)
    assert cfg.run_name == "omiti2v/wan2.1/scalar-paper-leaderboard"
    choices = ("judge.missing_video=wrong", "judge.metadata_fps=null", "scorer.aspect_resize.mode=none")
    lines = deviations(cfg, generation=False)
    assert len(lines) == 3 and lines == deviations(_compose(*choices), generation=False)
    for choice in choices:
        assert len(added("wan2.1", choice, generation=False)) == 1
