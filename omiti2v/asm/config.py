"""`ASMConfig`: what the attention scaling modulation does, where, and when.

Step windows act on the timestep the transformer is called with (1000 -> 0), as half-open intervals
``t_lo < t <= t_hi``: early = (900, inf), mid = (600, 900], late = (-inf, 600], all. A tuple ``(t_lo, t_hi)``
gives a custom window with the same convention.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from omiti2v.asm.presets import default_sites, get_preset
from omiti2v.asm.schedule import resolve_schedule
from omiti2v.config_rules import is_number, number, one_of

STRATEGIES = ("scalar", "energy", "blur_key", "none")
# The attention roles of a transformer (omiti2v/asm/sites.py finds them): where ASM can scale queries and keys.
SITES = ("self", "cross_image", "cross_text", "dual", "single", "joint")
WINDOWS: dict[str, tuple[float, float]] = {
    "early": (900.0, math.inf),
    "mid": (600.0, 900.0),
    "late": (-math.inf, 600.0),
    "all": (-math.inf, math.inf),
}
BLOCK_CHOICES = ("all", "preset", "calibrated")  # calibrated: the list in schedule.calibration_file (schedule.py)


def _window_rule(key, value):
    if isinstance(value, str):
        return None if value in WINDOWS else f"{key} {value!r} is not one of {'|'.join(WINDOWS)} or [t_lo, t_hi]"
    if isinstance(value, list) and len(value) == 2 and all(map(is_number, value)) and value[0] < value[1]:
        return None
    return f"{key} {value!r} is not one of {'|'.join(WINDOWS)} or [t_lo, t_hi] with t_lo < t_hi"


def _blocks_rule(key, value):
    if value in BLOCK_CHOICES or (isinstance(value, list) and all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)):
        return None
    return f"{key} {value!r} is not one of {'|'.join(BLOCK_CHOICES)} or a list of block indices"


# The `asm` and `schedule` groups as `from_hydra` reads them, checked before anything loads.
CONFIG_RULES = {
    "asm.strategy": one_of(*STRATEGIES),
    "asm.gamma_q": number(gt=0, nullable=True),
    "asm.gamma_k": number(gt=0, nullable=True),
    "asm.energy_queries": number(ge=1, nullable=True, integer=True),
    "schedule.blocks": _blocks_rule,
    "schedule.window": _window_rule,
}


def resolve_window(window: str | Sequence[float]) -> tuple[float, float]:
    """(t_lo, t_hi) of a named or explicit window; active when t_lo < t <= t_hi."""
    if isinstance(window, str):
        if window not in WINDOWS:
            raise ValueError(f"unknown step window {window!r}; expected one of {sorted(WINDOWS)} or (t_lo, t_hi)")
        return WINDOWS[window]
    lo, hi = (float(v) for v in window)
    if not lo < hi:
        raise ValueError(f"step window {tuple(window)} must satisfy t_lo < t_hi")
    return lo, hi


@dataclass(frozen=True)
class ASMConfig:
    """Attention Scaling Modulation settings.

    strategy: "scalar" (fixed logit multiplier), "energy" (multiplier from the attention entropy, see
        `omiti2v.asm.energy`), "blur_key" (Gaussian blur of K along the tokens, no scaling; pilot baseline),
        "none" (nothing installed).
    gamma_q / gamma_k: Q and K multipliers; logits at a site are multiplied by gamma_q (site in q_sites) times
        gamma_k (site in k_sites). Energy uses that product as its maximum. Both empty (no preset): the
        model's default recipe, see `with_default_sites`.
    blocks: "all", "preset" (the preset's BGS list, or all blocks when it has none) or explicit indices
        (counted within each block stream).
    window: named step window or (t_lo, t_hi), see the module docstring.
    energy_queries: queries sampled per call for the entropy estimate (None = all, exact and slow).
    """

    strategy: str = "scalar"
    gamma_q: float = 1.0
    gamma_k: float = 1.0
    q_sites: tuple[str, ...] = ()
    k_sites: tuple[str, ...] = ()
    blocks: str | tuple[int, ...] = "all"
    preset_blocks: tuple[int, ...] | None = None
    window: str | tuple[float, float] = "early"
    energy_queries: int | None = 64
    blur_kernel_size: int = 3
    blur_sigma: float = 0.5
    preset_name: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"ASMConfig.strategy={self.strategy!r}; expected one of {STRATEGIES}")
        for name in ("gamma_q", "gamma_k"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"ASMConfig.{name}={value!r} must be a positive finite number")
        for name in ("q_sites", "k_sites"):
            sites = tuple(getattr(self, name))
            unknown = set(sites) - set(SITES)
            if unknown:
                raise ValueError(f"ASMConfig.{name} has unknown sites {sorted(unknown)}; known: {SITES}")
            object.__setattr__(self, name, sites)
        if isinstance(self.blocks, str):
            if self.blocks not in ("all", "preset"):
                raise ValueError(f"ASMConfig.blocks={self.blocks!r}; expected 'all', 'preset' or a list of ints")
        else:
            blocks = tuple(int(b) for b in self.blocks)
            if any(b < 0 for b in blocks):
                raise ValueError(f"ASMConfig.blocks has negative indices: {blocks}")
            object.__setattr__(self, "blocks", blocks)
        if not isinstance(self.window, str):
            object.__setattr__(self, "window", tuple(float(v) for v in self.window))
        resolve_window(self.window)
        if self.energy_queries is not None and self.energy_queries < 1:
            raise ValueError("ASMConfig.energy_queries must be >= 1 or None")
        if self.blur_kernel_size < 1 or self.blur_kernel_size % 2 == 0:
            raise ValueError("ASMConfig.blur_kernel_size must be a positive odd integer")

    # -- construction -------------------------------------------------------------------------------------
    @classmethod
    def preset(cls, name: str, **overrides: Any) -> ASMConfig:
        """The official/default recipe `name` (see `omiti2v.asm.presets`), BGS blocks, early window."""
        preset = get_preset(name)
        base = cls(strategy="scalar", gamma_q=preset.gamma_q, gamma_k=preset.gamma_k, q_sites=preset.q_sites,
                   k_sites=preset.k_sites, blocks="preset", preset_blocks=preset.bgs_blocks, window=preset.window,
                   preset_name=name)
        return replace(base, **overrides) if overrides else base

    @classmethod
    def from_hydra(cls, preset: str, asm_cfg: Mapping[str, Any], schedule_cfg: Mapping[str, Any],
                   model_name: str | None = None) -> ASMConfig:
        """Config of a run: `cfg.model.asm_preset`, the `cfg.asm` group and the `cfg.schedule` group.

        `asm_cfg` keys: strategy, gamma_q / gamma_k (null = the preset's), optional q_sites, k_sites,
        energy_queries, blur_kernel_size, blur_sigma (`input_blur` and `name` are read by the generation stage,
        not here). `schedule_cfg` keys: blocks ("all" | "preset" | "calibrated" | list), window (name or
        [t_lo, t_hi]), calibration_file (read for "calibrated", checked against `model_name`; see
        `omiti2v.asm.schedule`).
        """
        schedule_cfg = resolve_schedule(schedule_cfg, model_name)
        overrides: dict[str, Any] = {"strategy": asm_cfg.get("strategy", "scalar")}
        for key in ("gamma_q", "gamma_k", "q_sites", "k_sites", "energy_queries", "blur_kernel_size",
                    "blur_sigma"):
            if asm_cfg.get(key) is not None:
                overrides[key] = asm_cfg[key]
        for key in ("blocks", "window"):
            if schedule_cfg.get(key) is not None:
                value = schedule_cfg[key]
                overrides[key] = value if isinstance(value, str) else tuple(value)
        return cls.preset(preset, **overrides)

    # -- derived ------------------------------------------------------------------------------------------
    @property
    def sites(self) -> tuple[str, ...]:
        """Sites that this config touches, in SITES order."""
        touched = set(self.q_sites) | set(self.k_sites)
        return tuple(s for s in SITES if s in touched)

    def with_default_sites(self, roles: set[str]) -> ASMConfig:
        """This config, or, when it names no q_sites and no k_sites, the default recipe for a model whose
        attention has `roles` (see `omiti2v.asm.presets.DEFAULT_RECIPES`)."""
        if self.q_sites or self.k_sites:
            return self
        q_sites, k_sites = default_sites(roles)
        return replace(self, q_sites=q_sites, k_sites=k_sites)

    def logit_multiplier(self, site: str) -> float:
        """Scalar-ASM factor on the softmax logits at `site` (1.0 where the site is not modulated)."""
        return (self.gamma_q if site in self.q_sites else 1.0) * (self.gamma_k if site in self.k_sites else 1.0)

    @property
    def preset_gamma(self) -> bool | None:
        """Whether gamma_q and gamma_k are the preset's (the recipe's own strength); None without a preset."""
        if self.preset_name is None:
            return None
        preset = get_preset(self.preset_name)
        return (self.gamma_q, self.gamma_k) == (preset.gamma_q, preset.gamma_k)

    def record(self, blocks: Sequence[int]) -> dict[str, Any]:
        """What this config does, for a run's records (sidecars, summary.json: `resolved_asm`), once installed in
        `blocks` (block indices within each stack; empty when nothing is installed). `logit_multipliers`: per
        modulated site, the factor on the logits in those blocks and steps (energy: its maximum; none and
        blur_key scale nothing). `window`: [t_lo, t_hi] with null for an unbounded side, None when not installed."""
        installed = self.strategy != "none" and bool(blocks)
        scaled = installed and self.strategy in ("scalar", "energy")
        window = [None if math.isinf(t) else t for t in resolve_window(self.window)] if installed else None
        return {
            "strategy": self.strategy,
            "preset": self.preset_name,
            "sites": list(self.sites) if installed else [],
            "logit_multipliers": {site: self.logit_multiplier(site) for site in self.sites} if scaled else {},
            "blocks": sorted(set(blocks)),
            "window": window,
            "preset_gamma": self.preset_gamma,
        }

    def block_selected(self, block: int) -> bool:
        if self.blocks == "all" or (self.blocks == "preset" and self.preset_blocks is None):
            return True
        chosen = self.preset_blocks if self.blocks == "preset" else self.blocks
        return block in chosen

    def step_active(self, timestep: float) -> bool:
        lo, hi = resolve_window(self.window)
        return lo < timestep <= hi
