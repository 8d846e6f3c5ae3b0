"""Scalar ASM: the logits at a modulated site are multiplied by gamma_q * gamma_k (inverse temperature)."""

from __future__ import annotations

from omiti2v.asm.config import ASMConfig
from omiti2v.asm.gating import TimestepTracker
from omiti2v.asm.processors import AttentionCall


class ScalarModulation:
    """Handler: multiplies the logits of selected sites by the config's fixed factor while the window is open."""

    def __init__(self, config: ASMConfig, tracker: TimestepTracker):
        self.config = config
        self.tracker = tracker

    def active(self, call: AttentionCall) -> bool:
        t = self.tracker.current
        return t is not None and call.site in self.config.sites and self.config.step_active(t)

    def __call__(self, call: AttentionCall) -> None:
        if self.active(call):
            call.logit_scale *= self.config.logit_multiplier(call.site)
