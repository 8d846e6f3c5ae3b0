"""Attention interception by subclassing each model's own diffusers attention processor.

Used where the post-RoPE query and key of each call are needed: the energy and key-blur strategies (which run
under `torch.compile`) and the entropy / foreground probes (eager tools), on any diffusers transformer whose
attention processors call `dispatch_attention_fn` or `F.scaled_dot_product_attention`, with the sites found by
role (`omiti2v.asm.sites`). Scalar ASM does not use it (see `omiti2v.asm.scaling`).

An intercepting processor is a subclass of the processor it replaces (so `isinstance` checks, the attention
backend settings and `set_attention_backend` keep working) whose `__call__` runs the parent's own code with one
name of its globals bound to `_intercepted_attention`: the attention function it calls (`dispatch_attention_fn`,
or `F` where it calls `F.scaled_dot_product_attention` directly, as EasyAnimate does; how the code is read and
rebound: `omiti2v.compat.diffusers`). Each attention call is handed, as an `AttentionCall`, to the
handlers registered on that processor; handlers may multiply the softmax logits by a Python float (folded into
the attention's `scale`, no extra kernel) or replace the query/key tensors; with multiplier 1 and the tensors
untouched the call is passed through as is.

Why this shape (torch.compile with fullgraph on the repeated blocks): the parent's code is rebound once per
processor class, never per instance, and the processor running finds its module through a module-level stack
pushed by `__call__`, so every block of a stack traces to the same graph. What differs between blocks (block
index, selection, the step window) lives in tensors on the attention module (`AttentionCall.strength`), filled
eagerly by the strategy before each forward; a handler that reads the block index or the module name (the
probes) is eager-only.

Several handlers (e.g. ASM, then the entropy probe) can share one processor; the original processor object
is put back when the last handler is removed.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from omiti2v.asm.lifecycle import IDLE
from omiti2v.asm.sites import find_scaling_sites
from omiti2v.compat.diffusers import attention_function, call_with_attention, carry_attention_backend

STRENGTH = "_asm_strength"  # per call of an attention module: the strategy's strength (see AttentionCall)


@dataclass(frozen=True)
class AttentionSite:
    """An attention module of a transformer and the sites of its successive attention calls."""

    module_name: str
    module: torch.nn.Module
    block: int
    sites: tuple[str, ...]  # one per attention call inside the processor, in call order


@dataclass
class AttentionCall:
    """One attention call as a handler sees it. Handlers may replace `query`/`key`, multiply `logit_scale`."""

    info: AttentionSite
    module: torch.nn.Module  # the attention module running (its buffers are graph inputs under compile)
    index: int  # the call's position within its module's processor
    query: torch.Tensor
    key: torch.Tensor
    attn_mask: torch.Tensor | None
    layout: str  # "BSHD" (diffusers dispatch) or "BHSD" (torch SDPA)
    base_scale: float  # the softmax scale the model would use (1/sqrt(head_dim) unless it passes its own)
    logit_scale: float = 1.0

    @property
    def site(self) -> str:
        return self.info.sites[min(self.index, len(self.info.sites) - 1)]

    @property
    def block(self) -> int:
        return self.info.block

    @property
    def module_name(self) -> str:
        return self.info.module_name

    @property
    def scale(self) -> float:
        return self.base_scale * self.logit_scale

    @property
    def strength(self) -> torch.Tensor:
        """0-dim float32 device tensor the strategy filled for this call and step (its identity when off)."""
        return getattr(self.module, STRENGTH).select(0, self.index)

    @property
    def idle(self) -> bool:
        """Eager runs only: the strength is known on the host to be the identity, so the handler may skip its
        work (compiled graphs always run it, with the identity strength)."""
        return not torch.compiler.is_compiling() and getattr(self.module, IDLE)[self.index]


Handler = Callable[[AttentionCall], None]


def find_attention_sites(model: torch.nn.Module) -> list[AttentionSite]:
    """Every attention of `model`'s block stacks whose processor can be intercepted, with the role of each of
    its calls (`omiti2v.asm.sites`); a processor already intercepted counts as its original class."""
    found = []
    for site in find_scaling_sites(model):
        module = model.get_submodule(site.module_name)
        processor = module.processor
        cls = type(processor._asm_original if isinstance(processor, InterceptingProcessorMixin) else processor)
        if attention_function(cls) is not None:
            found.append(AttentionSite(site.module_name, module, site.block, site.roles))
    return found


# (intercepting processor, its attention module) of the processor calls running, innermost last
_RUNNING: list[tuple[InterceptingProcessorMixin, torch.nn.Module]] = []


def _intercepted_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, *args: Any,
                           **kwargs: Any) -> torch.Tensor:
    """Stands in for the attention function in every intercepting processor's code."""
    processor, module = _RUNNING[-1]
    return processor._asm_attention(module, query, key, value, *args, **kwargs)


class _FunctionalProxy:
    """Stands in for `torch.nn.functional` inside a processor: SDPA goes to the interceptor."""

    scaled_dot_product_attention = staticmethod(_intercepted_attention)

    def __getattr__(self, name: str) -> Any:
        return getattr(F, name)


_FUNCTIONAL_PROXY = _FunctionalProxy()


class InterceptingProcessorMixin:
    """Mixed in front of a supported processor class; see the module docstring."""

    _asm_original: Any
    _asm_site: AttentionSite
    _asm_handlers: list[Handler]
    _asm_parent_call: Callable[..., Any]  # class attribute: the parent's code, attention function rebound
    _asm_attention_fn: Callable[..., torch.Tensor]  # class attribute: the attention function it replaces
    _asm_layout: str

    def _asm_attention(self, module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                       attn_mask: torch.Tensor | None = None, dropout_p: float = 0.0, is_causal: bool = False,
                       scale: float | None = None, **kwargs: Any) -> torch.Tensor:
        base_scale = scale if scale is not None else 1.0 / math.sqrt(query.shape[-1])
        call = AttentionCall(self._asm_site, module, self._asm_call_index, query, key, attn_mask, self._asm_layout,
                             base_scale)
        self._asm_call_index += 1
        for handler in self._asm_handlers:
            handler(call)
        if call.logit_scale != 1.0:
            scale = call.scale
        return self._asm_attention_fn(call.query, call.key, value, attn_mask=attn_mask, dropout_p=dropout_p,
                                      is_causal=is_causal, scale=scale, **kwargs)


_SUBCLASSES: dict[type, type] = {}


def _intercepting_class(cls: type) -> type:
    if cls not in _SUBCLASSES:
        global_name, layout = attention_function(cls)
        parent_call = cls.__call__
        replacement = _FUNCTIONAL_PROXY if global_name == "F" else _intercepted_attention
        rebound, replaced = call_with_attention(cls, global_name, replacement)
        original = replaced.scaled_dot_product_attention if global_name == "F" else replaced

        def __call__(self: InterceptingProcessorMixin, attn: torch.nn.Module, *args: Any, **kwargs: Any) -> Any:
            self._asm_call_index = 0
            _RUNNING.append((self, attn))
            try:
                return rebound(self, attn, *args, **kwargs)
            finally:
                _RUNNING.pop()

        # diffusers' `Attention.forward` drops kwargs missing from the processor's signature: keep the parent's.
        __call__.__signature__ = inspect.signature(parent_call)
        _SUBCLASSES[cls] = type(f"Intercepting{cls.__name__}", (InterceptingProcessorMixin, cls), {
            "__call__": __call__, "_asm_attention_fn": staticmethod(original), "_asm_layout": layout})
    return _SUBCLASSES[cls]


def _make_intercepting(original: Any, site: AttentionSite) -> InterceptingProcessorMixin:
    processor = object.__new__(_intercepting_class(type(original)))
    processor.__dict__.update(original.__dict__)
    processor._asm_original = original
    processor._asm_site = site
    processor._asm_handlers = []
    processor._asm_call_index = 0
    return processor


class InterceptionHandle:
    """Removes one handler from the processors it was added to; restores originals left without handlers."""

    def __init__(self, entries: list[tuple[torch.nn.Module, Handler]]):
        self._entries = entries

    @property
    def module_names(self) -> list[str]:
        return [module.processor._asm_site.module_name for module, _ in self._entries
                if isinstance(module.processor, InterceptingProcessorMixin)]

    def remove(self) -> None:
        for module, handler in self._entries:
            processor = module.processor
            if not isinstance(processor, InterceptingProcessorMixin):
                continue  # someone replaced the processor meanwhile; nothing of ours is left there
            if handler in processor._asm_handlers:
                processor._asm_handlers.remove(handler)
            if not processor._asm_handlers:
                original = processor._asm_original
                carry_attention_backend(processor, original)  # keep a backend chosen while intercepted
                module.set_processor(original)
        self._entries = []


def intercept_attention(sites: list[AttentionSite], handler: Handler) -> InterceptionHandle:
    """Route every attention call of `sites` through `handler` (after handlers already installed)."""
    entries = []
    for site in sites:
        processor = site.module.processor
        if not isinstance(processor, InterceptingProcessorMixin):
            processor = _make_intercepting(processor, site)
            site.module.set_processor(processor)
        processor._asm_handlers.append(handler)
        entries.append((site.module, handler))
    return InterceptionHandle(entries)
