"""Attention interception by subclassing each model's own diffusers attention processor (eager only).

Used where the post-RoPE query and key of each call are needed: the energy and key-blur strategies and the
entropy / foreground probes. Scalar ASM does not use it (see `omiti2v.asm.scaling`, compile-friendly).

An intercepting processor is a subclass of the processor it replaces (so `isinstance` checks, the
`_attention_backend` / `_parallel_config` settings and `set_attention_backend` keep working) whose `__call__`
runs the parent's own code with one name in its globals rebound: the attention function it calls
(`dispatch_attention_fn`, or `F` for EasyAnimate, which calls `F.scaled_dot_product_attention` directly).
Each attention call is handed, as an `AttentionCall`, to the handlers registered on that processor; handlers
may multiply the softmax logits by a Python float, folded into the attention's `scale` argument so no extra
kernel runs, or replace the query/key tensors (key blur; energy ASM, whose multiplier stays on the device);
with multiplier 1 and the tensors untouched the call is passed through as is.

Several handlers (e.g. ASM, then the entropy probe) can share one processor; the original processor object
is put back when the last handler is removed.
"""

from __future__ import annotations

import inspect
import math
import re
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from diffusers.models.transformers.transformer_easyanimate import EasyAnimateAttnProcessor2_0
from diffusers.models.transformers.transformer_hunyuan_video import HunyuanVideoAttnProcessor2_0
from diffusers.models.transformers.transformer_skyreels_v2 import SkyReelsV2AttnProcessor
from diffusers.models.transformers.transformer_wan import WanAttnProcessor

# processor class -> (global name of its attention function, tensor layout of q/k/v at that call)
SUPPORTED_PROCESSORS: dict[type, tuple[str, str]] = {
    WanAttnProcessor: ("dispatch_attention_fn", "BSHD"),
    SkyReelsV2AttnProcessor: ("dispatch_attention_fn", "BSHD"),
    HunyuanVideoAttnProcessor2_0: ("dispatch_attention_fn", "BSHD"),
    EasyAnimateAttnProcessor2_0: ("F", "BHSD"),
}

_BLOCK_PATH = re.compile(r"^(blocks|transformer_blocks|single_transformer_blocks)\.(\d+)\.(attn1|attn2|attn)$")
_BACKEND_ATTRS = ("_attention_backend", "_parallel_config")


@dataclass
class AttentionCall:
    """One attention call as a handler sees it. Handlers may replace `query`/`key`, multiply `logit_scale`."""

    site: str
    block: int
    module_name: str
    query: torch.Tensor
    key: torch.Tensor
    attn_mask: torch.Tensor | None
    layout: str  # "BSHD" (diffusers dispatch) or "BHSD" (torch SDPA)
    base_scale: float  # the softmax scale the model would use (1/sqrt(head_dim) unless it passes its own)
    logit_scale: float = 1.0

    @property
    def scale(self) -> float:
        return self.base_scale * self.logit_scale


Handler = Callable[[AttentionCall], None]


@dataclass(frozen=True)
class AttentionSite:
    """An attention module of a transformer and the sites of its successive attention calls."""

    module_name: str
    module: torch.nn.Module
    block: int
    sites: tuple[str, ...]  # one per attention call inside the processor, in call order


def find_attention_sites(model: torch.nn.Module) -> list[AttentionSite]:
    """Every ASM-capable attention of `model` (Wan, SkyReels, HunyuanVideo, FramePack, EasyAnimate)."""
    found = []
    for name, module in model.named_modules():
        processor = getattr(module, "processor", None)
        match = _BLOCK_PATH.match(name)
        if processor is None or match is None:
            continue
        base = _base_processor_class(processor)
        if base is None:
            continue
        stream, block, attr = match.group(1), int(match.group(2)), match.group(3)
        if base in (WanAttnProcessor, SkyReelsV2AttnProcessor):
            if attr == "attn1":
                sites: tuple[str, ...] = ("self",)
            else:  # the processor attends to the image tokens first, then to the text tokens
                sites = ("cross_image", "cross_text") if module.add_k_proj is not None else ("cross_text",)
        elif base is HunyuanVideoAttnProcessor2_0:
            sites = ("single",) if stream == "single_transformer_blocks" else ("dual",)
        else:
            sites = ("joint",)
        found.append(AttentionSite(name, module, block, sites))
    return found


def _base_processor_class(processor: Any) -> type | None:
    for cls in type(processor).__mro__:
        if cls in SUPPORTED_PROCESSORS:
            return cls
    return None


class _FunctionalProxy:
    """Stands in for `torch.nn.functional` inside a processor: SDPA goes to the interceptor."""

    def __init__(self, sdpa: Callable[..., torch.Tensor]):
        self.scaled_dot_product_attention = sdpa

    def __getattr__(self, name: str) -> Any:
        return getattr(F, name)


class InterceptingProcessorMixin:
    """Mixed in front of a supported processor class; see the module docstring."""

    _asm_original: Any
    _asm_site: AttentionSite
    _asm_handlers: list[Handler]

    def _asm_attention(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                       attn_mask: torch.Tensor | None = None, dropout_p: float = 0.0, is_causal: bool = False,
                       scale: float | None = None, **kwargs: Any) -> torch.Tensor:
        sites = self._asm_site.sites
        site = sites[min(self._asm_call_index, len(sites) - 1)]
        self._asm_call_index += 1
        base_scale = scale if scale is not None else 1.0 / math.sqrt(query.shape[-1])
        call = AttentionCall(site, self._asm_site.block, self._asm_site.module_name, query, key, attn_mask,
                             self._asm_layout, base_scale)
        for handler in list(self._asm_handlers):
            handler(call)
        if call.logit_scale != 1.0:
            scale = call.scale
        return self._asm_attention_fn(call.query, call.key, value, attn_mask=attn_mask, dropout_p=dropout_p,
                                      is_causal=is_causal, scale=scale, **kwargs)


_SUBCLASSES: dict[type, type] = {}


def _intercepting_class(cls: type) -> type:
    if cls not in _SUBCLASSES:
        def __call__(self: InterceptingProcessorMixin, *args: Any, **kwargs: Any) -> Any:
            self._asm_call_index = 0
            return self._asm_bound_call(self, *args, **kwargs)

        # diffusers' `Attention.forward` drops kwargs missing from the processor's signature: keep the parent's.
        __call__.__signature__ = inspect.signature(cls.__call__)
        _SUBCLASSES[cls] = type(f"Intercepting{cls.__name__}", (InterceptingProcessorMixin, cls),
                                {"__call__": __call__})
    return _SUBCLASSES[cls]


def _make_intercepting(original: Any, site: AttentionSite) -> InterceptingProcessorMixin:
    cls = type(original)
    base = _base_processor_class(original)
    global_name, layout = SUPPORTED_PROCESSORS[base]
    processor = object.__new__(_intercepting_class(cls))
    processor.__dict__.update(original.__dict__)
    parent_call = cls.__call__
    namespace = dict(parent_call.__globals__)
    processor._asm_attention_fn = namespace[global_name] if global_name != "F" else F.scaled_dot_product_attention
    namespace[global_name] = (processor._asm_attention if global_name != "F"
                              else _FunctionalProxy(processor._asm_attention))
    bound = types.FunctionType(parent_call.__code__, namespace, parent_call.__name__, parent_call.__defaults__,
                               parent_call.__closure__)
    bound.__kwdefaults__ = parent_call.__kwdefaults__
    processor._asm_bound_call = bound
    processor._asm_layout = layout
    processor._asm_original = original
    processor._asm_site = site
    processor._asm_handlers = []
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
                for attr in _BACKEND_ATTRS:  # keep a backend chosen while intercepted
                    if attr in processor.__dict__:
                        setattr(original, attr, processor.__dict__[attr])
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
