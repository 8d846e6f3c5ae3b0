"""Scalar ASM as forward hooks on the Q/K outputs of attention, compile-friendly and loud when bypassed.

Each modulated attention call gets its logit multiplier ``gamma_q^[site in q_sites] * gamma_k^[site in
k_sites]`` as a product of factors on the modules that produce its query and key (`omiti2v.asm.sites`): a
forward hook multiplies the module's output by a 0-dim float32 buffer. Where one query feeds several calls
with different query factors (Wan's cross-attention attends to the image and to the text with one query), the
query factor moves onto each call's own key, so the logits multipliers stay exact.

Why this shape:
* torch.compile: the hook is one module-level function and its state is buffers, so every block of a stack
  traces to the same graph (`transformer.compile_repeated_blocks`). Hooks go on the same modules in *every*
  block of a stack, with factor 1 in the blocks not selected (x * 1.0 is exact), because dynamo does not guard
  on hooks: a hooked and an unhooked block would share a graph.
* The buffers are float32; install ASM after casting the model (a later `.to(torch.bfloat16)` casts them too).
* Step gating is decided eagerly in a transformer forward pre-hook (`TimestepTracker`'s timestep rule) that
  fills the buffers with the factors inside the window and with 1 outside it; no new graph across timesteps.
  Eager runs skip the multiply where the factor is known on the host to be 1 (`_asm_unit`); compiled graphs
  never read that flag, so it adds no guard.
* Fail loudly: each hook counts its calls in a buffer; after an in-window forward, a selected call whose
  modules never ran raises `ASMBypassedError` (e.g. a diffusers refactor no longer calls ``norm_k``). A
  forward in which no hooked module ran at all skipped the block stack (TeaCache reusing its cache) and
  passes, except on the first in-window forward of the handle, which must see every selected call.
"""

from __future__ import annotations

from typing import Any

import torch

from omiti2v.asm.config import ASMConfig
from omiti2v.asm.gating import TimestepTracker
from omiti2v.asm.sites import AttentionCallSite, ScalingSite

FACTOR = "_asm_factor"
CALLS = "_asm_calls"


class ASMBypassedError(RuntimeError):
    """A selected attention call was never intercepted in a forward inside the step window."""


def raise_if_bypassed(module: torch.nn.Module, timestep: float | None, names: list[str], counts: list[int],
                      seen_before: bool) -> bool:
    """The bypass rule of the module docstring for one in-window forward; returns whether calls were seen."""
    if not any(counts) and seen_before:
        return True  # the block stack was skipped (cached step)
    missing = [name for name, count in zip(names, counts, strict=True) if count == 0]
    if missing:
        raise ASMBypassedError(
            f"ASM saw no attention call at {len(missing)} of {len(counts)} selected sites of {type(module).__name__} "
            f"at t={timestep:g} (first: {', '.join(missing[:3])}): the attention no longer runs the code ASM "
            "hooks; ASM would be a silent no-op")
    return True


def _scale_output(module: torch.nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
    module._asm_calls.add_(1)
    if not torch.compiler.is_compiling() and module._asm_unit:
        return output  # eager, factor known on the host to be 1 (outside the window, blocks not selected)
    return output * module._asm_factor


def _query_factor(call: AttentionCallSite, config: ASMConfig) -> float:
    return config.gamma_q if call.role in config.q_sites else 1.0


def call_factors(call: AttentionCallSite, config: ASMConfig, query_shared_apart: bool
                 ) -> dict[torch.nn.Module, float]:
    """Factor per Q/K module of one modulated call. `query_shared_apart`: another call of the module uses the
    same query with a different query factor, so this call's query factor goes onto its key."""
    query_factor = _query_factor(call, config)
    key_factor = config.gamma_k if call.role in config.k_sites else 1.0
    factors: dict[torch.nn.Module, float] = {}
    if query_shared_apart:
        key_factor = query_factor * key_factor
    elif call.role in config.q_sites:
        factors.update({module: query_factor for module in call.query})
    if call.role in config.k_sites or query_shared_apart:
        factors.update({module: key_factor for module in call.key})
    return factors


def site_factors(site: ScalingSite, config: ASMConfig) -> tuple[dict[torch.nn.Module, float],
                                                                 dict[str, torch.nn.Module]]:
    """(factor per module to hook, one hooked module per modulated role to count its calls) of `site`."""
    factors: dict[torch.nn.Module, float] = {}
    witnesses = {}
    for call in site.calls:
        if call.role not in config.sites:
            continue
        apart = any(other.query == call.query and _query_factor(other, config) != _query_factor(call, config)
                    for other in site.calls)
        own = call_factors(call, config, apart)
        for module, factor in own.items():
            if module in factors and factors[module] != factor:
                raise ValueError(f"{site.module_name}: calls share a key; ASM cannot give them different factors")
            factors[module] = factor
        witnesses[call.role] = next((m for m in call.key if m in own), next(iter(own)))
    return factors, witnesses


class ScaledAttention(TimestepTracker):
    """Scalar ASM installed on one transformer: Q/K hooks, the step gate and the bypass check."""

    def __init__(self, transformer: torch.nn.Module, config: ASMConfig, hooked: list[ScalingSite],
                 selected: list[ScalingSite]):
        super().__init__(transformer)
        self.config = config
        self.module_names = [site.module_name for site in selected]
        self.blocks = sorted({site.block for site in selected})
        chosen = {site.module_name for site in selected}
        # modules, not their buffers: `model.to(...)` (and CPU offload) replaces buffer tensors
        self._active_values: list[tuple[torch.nn.Module, float]] = []
        self._witnesses: list[tuple[str, torch.nn.Module]] = []
        self._hooks: list[Any] = [transformer.register_forward_hook(self._check)]
        self._modules: list[torch.nn.Module] = []
        self._calls: list[tuple[str, str, list[torch.nn.Module]]] = []
        self._active: bool | None = None
        self._seen_in_window = False
        device = next(transformer.parameters()).device
        for site in hooked:
            factors, witnesses = site_factors(site, config)
            for module, factor in factors.items():
                if FACTOR in module._buffers:
                    raise RuntimeError(f"{site.module_name}: ASM is already installed on this transformer")
                module.register_buffer(FACTOR, torch.ones((), device=device), persistent=False)
                module.register_buffer(CALLS, torch.zeros((), dtype=torch.int64, device=device), persistent=False)
                module._asm_unit = True
                self._hooks.append(module.register_forward_hook(_scale_output))
                self._modules.append(module)
                if site.module_name in chosen:
                    self._active_values.append((module, factor))
            for call in site.calls:
                self._calls.append((site.module_name, call.role,
                                    [m for m in (*call.query, *call.key) if m in factors]))
            if site.module_name in chosen:
                self._witnesses += [(f"{site.module_name} ({role})", module) for role, module in witnesses.items()]

    def _record(self, module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        super()._record(module, args, kwargs)
        active = self.config.step_active(self.current)
        if active != self._active:
            for hooked, factor in self._active_values:
                hooked._buffers[FACTOR].fill_(factor if active else 1.0)
                hooked._asm_unit = not active or factor == 1.0
            self._active = active
        if active:
            for _, hooked in self._witnesses:
                hooked._buffers[CALLS].zero_()

    def _check(self, module: torch.nn.Module, args: tuple, output: Any) -> None:
        if not self._active or not self._witnesses:
            return
        counts = torch.stack([hooked._buffers[CALLS] for _, hooked in self._witnesses]).tolist()
        self._seen_in_window = raise_if_bypassed(module, self.current, [name for name, _ in self._witnesses],
                                                 counts, self._seen_in_window)

    def logit_multipliers(self) -> dict[tuple[str, str], float]:
        """{(attention module, role): factor on its logits} as of the latest forward, for every call of the
        hooked attention modules (1.0 outside the window, in the blocks not selected and at unmodulated roles)."""
        values = {}
        for module_name, role, hooked in self._calls:
            factors = [m._buffers[FACTOR] for m in hooked]
            values[(module_name, role)] = float(torch.stack(factors).double().prod()) if factors else 1.0
        return values

    def remove(self) -> None:
        super().remove()
        for hook in self._hooks:
            hook.remove()
        for module in self._modules:
            for name in (FACTOR, CALLS):
                module._buffers.pop(name, None)
            module.__dict__.pop("_asm_unit", None)
        self._hooks, self._modules, self._active_values, self._witnesses, self._calls = [], [], [], [], []
