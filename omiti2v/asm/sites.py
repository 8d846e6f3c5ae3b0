"""Attention sites of any diffusers transformer, found by role from the module tree.

A transformer's attention modules sit in block stacks, ``<stack>.<i>.<attr>`` with ``<stack>`` a top-level
`ModuleList` (``blocks``, ``transformer_blocks``, ``single_transformer_blocks``, ...); the block index counts
within its stack. Each attention call of a module gets a role:

* ``dual`` / ``joint``: the module has ``add_q_proj`` (text and video queries attend jointly); ``dual`` when the
  model also has a single-stream stack (HunyuanVideo, FramePack), ``joint`` otherwise (EasyAnimate);
* ``single``: in a stack whose name contains "single" (single-stream blocks over text + video tokens);
* ``cross_image`` then ``cross_text``: a cross-attention (``is_cross_attention``, or ``attn2`` where the module
  does not say) with ``add_k_proj`` (Wan's image tokens via added K/V; the processor attends to the image first);
* ``cross_text``: any other cross-attention (LTX-Video's ``attn2``);
* ``self``: everything else in a stack.

Every call is given the modules whose outputs are its query and its key: ``norm_q`` / ``norm_k`` (or ``to_q`` /
``to_k`` where a model has no Q/K norm), plus ``norm_added_q`` / ``norm_added_k`` (or the ``add_*_proj``) for
the text tokens of joint attention and the image key of Wan. Scaling these outputs scales the logits exactly:
RoPE, applied after the norms, is a rotation and commutes with a scalar.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .config import SITES  # every role a call can have, in the order hooks report them


@dataclass(frozen=True)
class AttentionCallSite:
    """One attention call inside a module: its role and the modules producing its query and key."""

    role: str
    query: tuple[torch.nn.Module, ...]
    key: tuple[torch.nn.Module, ...]


@dataclass(frozen=True)
class ScalingSite:
    """An attention module of a block stack and its attention calls, in call order."""

    module_name: str
    stack: str
    block: int
    calls: tuple[AttentionCallSite, ...]

    @property
    def roles(self) -> tuple[str, ...]:
        return tuple(call.role for call in self.calls)


def _output_of(module: torch.nn.Module, norm: str, projection: str) -> torch.nn.Module | None:
    """The module whose output is the Q/K tensor: the norm where the model has one, else the projection."""
    found = getattr(module, norm, None)
    if isinstance(found, torch.nn.Module):
        return found
    found = getattr(module, projection, None)
    return found if isinstance(found, torch.nn.Module) else None


def _is_attention(module: torch.nn.Module) -> bool:
    return hasattr(module, "processor") and _output_of(module, "norm_q", "to_q") is not None


def _calls(module: torch.nn.Module, attr: str, stack: str, dual_stream: bool) -> tuple[AttentionCallSite, ...]:
    query = _output_of(module, "norm_q", "to_q")
    key = _output_of(module, "norm_k", "to_k")
    if key is None:
        raise TypeError(f"attention {type(module).__name__} has no to_k/norm_k (fused QKV?): ASM cannot scale it")
    added_key = _output_of(module, "norm_added_k", "add_k_proj") if getattr(module, "add_k_proj", None) is not None else None
    if getattr(module, "add_q_proj", None) is not None:
        added_query = _output_of(module, "norm_added_q", "add_q_proj")
        role = "dual" if dual_stream else "joint"
        return (AttentionCallSite(role, (query, added_query), (key, added_key)),)
    if "single" in stack:
        return (AttentionCallSite("single", (query,), (key,)),)
    cross = getattr(module, "is_cross_attention", None)
    if cross is None:
        cross = attr == "attn2"
    if not cross:
        return (AttentionCallSite("self", (query,), (key,)),)
    text = AttentionCallSite("cross_text", (query,), (key,))
    return (AttentionCallSite("cross_image", (query,), (added_key,)), text) if added_key is not None else (text,)


def find_scaling_sites(model: torch.nn.Module) -> list[ScalingSite]:
    """Every attention module of `model`'s top-level block stacks, with the role of each of its calls."""
    stacks = {name: child for name, child in model.named_children() if isinstance(child, torch.nn.ModuleList)}
    dual_stream = any("single" in name for name in stacks)
    found = []
    for stack, blocks in stacks.items():
        for index, block in enumerate(blocks):
            for attr, module in block.named_children():
                if _is_attention(module):
                    found.append(ScalingSite(f"{stack}.{index}.{attr}", stack, index,
                                             _calls(module, attr, stack, dual_stream)))
    return found


def describe_sites(sites: list[ScalingSite]) -> str:
    """'role: N blocks (stack.*.attr)' per role, for error messages."""
    by_role: dict[str, set[str]] = {}
    counts: dict[str, int] = {}
    for site in sites:
        pattern = f"{site.stack}.*.{site.module_name.rsplit('.', 1)[-1]}"
        for role in site.roles:
            by_role.setdefault(role, set()).add(pattern)
            counts[role] = counts.get(role, 0) + 1
    if not by_role:
        return "no attention in a block stack"
    return "; ".join(f"{role}: {counts[role]} blocks ({', '.join(sorted(by_role[role]))})"
                     for role in SITES if role in by_role)
