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
* Step gating, call counting, the bypass check and removal are `omiti2v.asm.lifecycle.StepGate`'s: the factors
  inside the window, 1 outside it, written eagerly before each forward; no new graph across timesteps. Eager
  runs skip the multiply where the factor is known on the host to be 1.
"""

from __future__ import annotations

import torch

from omiti2v.asm.config import ASMConfig
from omiti2v.asm.lifecycle import CALLS, IDLE, StepGate
from omiti2v.asm.sites import AttentionCallSite, ScalingSite

FACTOR = "_asm_factor"


def _scale_output(module: torch.nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
    getattr(module, CALLS).add_(1)
    if not torch.compiler.is_compiling() and getattr(module, IDLE)[0]:
        return output  # eager, factor known on the host to be 1 (outside the window, blocks not selected)
    return output * getattr(module, FACTOR)


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


class ScaledAttention(StepGate):
    """Scalar ASM installed on one transformer: Q/K hooks on the lifecycle of `StepGate`."""

    def __init__(self, transformer: torch.nn.Module, config: ASMConfig, hooked: list[ScalingSite],
                 selected: list[ScalingSite]):
        super().__init__(transformer, config, FACTOR, identity=1.0)
        self.module_names = [site.module_name for site in selected]
        self.blocks = sorted({site.block for site in selected})
        chosen = {site.module_name for site in selected}
        self._calls: list[tuple[str, str, list[torch.nn.Module]]] = []
        with self.installing():
            for site in hooked:
                factors, witnesses = site_factors(site, config)
                for module, factor in factors.items():
                    self.add(module, site.module_name)
                    self.keep(module.register_forward_hook(_scale_output))
                    if site.module_name in chosen:
                        self.select(module, (factor,))
                for call in site.calls:
                    self._calls.append((site.module_name, call.role,
                                        [m for m in (*call.query, *call.key) if m in factors]))
                if site.module_name in chosen:
                    for role, module in witnesses.items():
                        self.witness(f"{site.module_name} ({role})", module)

    def logit_multipliers(self) -> dict[tuple[str, str], float]:
        """{(attention module, role): factor on its logits} as of the latest forward, for every call of the
        hooked attention modules (1.0 outside the window, in the blocks not selected and at unmodulated roles)."""
        values = {}
        for module_name, role, hooked in self._calls:
            factors = [getattr(m, FACTOR) for m in hooked]
            values[(module_name, role)] = float(torch.stack(factors).double().prod()) if factors else 1.0
        return values
