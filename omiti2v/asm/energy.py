"""Energy-based ASM: the logit multiplier follows the diffuseness of the attention it modulates.

The paper only says the coefficient adapts to the entropy of the attention logits, stronger when attention is
less focused. Our definition, per attention call:

    h         = mean over (batch, heads, sampled queries) of H(q) / log N_keys      in [0, 1]
    gamma_eff = 1 + (gamma_site - 1) * h

where H(q) is the entropy of the unmodulated attention distribution of query q (see `omiti2v.asm.entropy`)
and gamma_site the scalar recipe's multiplier at that site (e.g. gamma^2 on Wan's text branch). So uniform
attention (all-equal logits, h = 1) gets the full scalar strength, a one-hot attention (h = 0) is left alone,
gamma_eff >= 1 whenever gamma_site >= 1 and it is monotone in the entropy. The estimate uses
`energy_queries` strided queries against all keys (never an N x N matrix). gamma_eff stays a device tensor
(no host sync): it multiplies the smaller of Q and K (Wan's text/image keys: 512/257 tokens), which scales
the logits exactly as the `scale` argument would.
"""

from __future__ import annotations

import torch

from omiti2v.asm.config import ASMConfig
from omiti2v.asm.entropy import attention_entropy, normalized_entropy
from omiti2v.asm.processors import AttentionCall

# Logits per entropy chunk (64 MB in float32): few, large kernels on the hot path, below a block's own
# activation peak, so the peak memory of the forward does not move.
ENTROPY_CHUNK_ELEMENTS = 1 << 24


def effective_gamma(normalized: torch.Tensor | float, gamma: torch.Tensor | float) -> torch.Tensor:
    """gamma_eff = 1 + (gamma - 1) * h for normalised entropy h (clamped to [0, 1]; NaN counts as 0)."""
    h = torch.as_tensor(normalized, dtype=torch.float32).nan_to_num(0.0).clamp(0.0, 1.0)
    return 1.0 + (gamma - 1.0) * h


class EnergyModulation:
    """Handler: the scalar recipe's multiplier at the site (`call.strength`: gamma_site in the selected blocks
    inside the window, 1 elsewhere, which leaves the call exactly as it was), scaled down by how focused the
    attention is."""

    def __init__(self, config: ASMConfig):
        self.config = config

    @staticmethod
    def strength(config: ASMConfig, role: str) -> float:
        """The strength of an active call at `role` (1 = identity)."""
        return config.logit_multiplier(role) if role in config.sites else 1.0

    identity = 1.0

    def gamma(self, call: AttentionCall) -> torch.Tensor:
        """gamma_eff of `call` (0-d float32 device tensor, no host sync)."""
        with torch.no_grad():
            entropy, log_count = attention_entropy(call.query, call.key, call.scale, call.attn_mask, call.layout,
                                                   max_queries=self.config.energy_queries,
                                                   chunk_elements=ENTROPY_CHUNK_ELEMENTS)
            return effective_gamma(normalized_entropy(entropy, log_count).mean(), call.strength)

    def __call__(self, call: AttentionCall) -> None:
        if call.idle:
            return
        gamma_eff = self.gamma(call)
        if call.key.numel() <= call.query.numel():
            call.key = call.key * gamma_eff.to(call.key.dtype)
        else:
            call.query = call.query * gamma_eff.to(call.query.dtype)
