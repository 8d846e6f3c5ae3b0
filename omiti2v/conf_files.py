"""A shipped group config read without Hydra (the library, `omiti2v rejudge`, benchmarks): conf/<group>/<name>.yaml
with its defaults list (other configs of the same group and `_self_`) merged in Hydra's order, so a config that
builds on another (a judge swap on the paper judge's frames, FramePack-F1 on FramePack) reads as Hydra composes it."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from .paths import CONF_DIR


def group_options(group: str) -> list[str]:
    """Every selectable `<group>=<name>`."""
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def load_group_config(group: str, name: str) -> DictConfig:
    """conf/<group>/<name>.yaml with its defaults list resolved; KeyError naming the options when there is none."""
    path = CONF_DIR / group / f"{name}.yaml"
    if not path.is_file():
        raise KeyError(f"{group}={name!r}: no {path}; known: {', '.join(group_options(group))}")
    own = OmegaConf.load(path)
    defaults = own.pop("defaults", None) or ["_self_"]
    merged = OmegaConf.create()
    for entry in defaults:  # Hydra's order: listed configs, `_self_` where it stands
        merged = OmegaConf.merge(merged, own if entry == "_self_" else load_group_config(group, str(entry)))
    if "_self_" not in defaults:
        merged = OmegaConf.merge(merged, own)
    return merged
