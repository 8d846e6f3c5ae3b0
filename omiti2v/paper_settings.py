"""The paper's settings, read from the one shipped config that runs each of them.

A fact of the official procedure is written once, in the config a paper run composes: the judge's checkpoint and
frame sampling in conf/judge/qwen2.5-vl-32b.yaml (Qwen2.5-VL-32B-Instruct, the judge of arXiv 2512.01334, with the
frames the official AlignVid qwen.py samples), what the profile adds for every model in conf/profile/paper.yaml,
and each official model's generation in conf/model/<name>.yaml (Wan2.1 and FramePack as the official AlignVid
scripts run them). The deviation check (profile.py), the judge's library defaults and the judge registry read
them here; tests/test_one_home.py fails when one of these values is written a second time.
"""

from __future__ import annotations

import copy
from functools import cache

from omegaconf import OmegaConf

from .paths import CONF_DIR

PAPER_JUDGE_NAME = "qwen2.5-vl-32b"
JUDGE_KEYS = ("model", "fps", "max_pixels", "max_new_tokens")  # what the judge's own yaml holds


@cache
def _shipped(group: str, name: str) -> dict:
    return OmegaConf.to_container(OmegaConf.load(CONF_DIR / group / f"{name}.yaml"))


def shipped_config(group: str, name: str) -> dict:
    """conf/<group>/<name>.yaml as plain data, read once (files without a defaults list: judges, profiles)."""
    return copy.deepcopy(_shipped(group, name))


def judge_checkpoint(name: str) -> str:
    """`model` of conf/judge/<name>.yaml: the hub checkpoint of that judge ("tiny" for the offline builds)."""
    return str(_shipped("judge", name)["model"])


def paper_judge() -> dict:
    """The paper judge's model, fps, max_pixels and max_new_tokens, and the metadata fps the paper profile tells
    its processor."""
    judge = {key: _shipped("judge", PAPER_JUDGE_NAME)[key] for key in JUDGE_KEYS}
    return judge | {"fps": float(judge["fps"]), "metadata_fps": _shipped("profile", "paper")["judge"]["metadata_fps"]}


def official_model(name: str) -> dict:
    """conf/model/<name>.yaml resolved (its defaults list too): the official settings of a paper model."""
    from .models.settings import model_settings

    return model_settings(name)
