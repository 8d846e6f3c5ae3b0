"""Reaches into diffusers (0.42) internals.

Attention processors: diffusers exposes a processor as a callable with no hook between its projections and its
attention kernel, so intercepting the post-RoPE query and key means running the processor's own `__call__` with
the attention function it calls swapped (`attention_function`, `call_with_attention`) and carrying the
processor's backend settings over (`carry_attention_backend`). The rest are single private names diffusers
reads or sets itself: the repeated blocks that `compile_repeated_blocks` compiles, the context-parallel plan,
the pipeline's interrupt flag, the stateful flag of hooks, the layer-skip hooks' registry name and processor
registry, and the forward a `ModelHook` wraps.
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable
from typing import Any

import torch
from diffusers.hooks import ModelHook

# Per-instance settings `ModelMixin.set_attention_backend` / `enable_parallelism` write on processors.
ATTENTION_BACKEND_SETTINGS = ("_attention_backend", "_parallel_config")


def attention_function(processor_class: type) -> tuple[str, str] | None:
    """(module-global name, q/k/v layout) of the attention function a processor class's `__call__` calls:
    `dispatch_attention_fn` (layout BSHD; 72 of the 73 processors of diffusers 0.42) or
    `F.scaled_dot_product_attention` (BHSD, EasyAnimate), read from the global names its code uses; None if it
    calls neither."""
    call = inspect.getattr_static(processor_class, "__call__", None)
    names = call.__code__.co_names if inspect.isfunction(call) else ()
    if "dispatch_attention_fn" in names:
        return "dispatch_attention_fn", "BSHD"
    if "F" in names and "scaled_dot_product_attention" in names:
        return "F", "BHSD"
    return None


def call_with_attention(processor_class: type, global_name: str, replacement: Any
                        ) -> tuple[Callable[..., Any], Any]:
    """(the code of `processor_class.__call__` as a new function whose global `global_name` is `replacement`,
    the object that global names in the processor's module). The module's globals are copied, never changed;
    build it once per class, so that every block of a stack traces to one graph under torch.compile."""
    call = processor_class.__call__
    namespace = dict(call.__globals__)
    replaced, namespace[global_name] = namespace[global_name], replacement
    rebound = types.FunctionType(call.__code__, namespace, call.__name__, call.__defaults__, call.__closure__)
    rebound.__kwdefaults__ = call.__kwdefaults__
    return rebound, replaced


def carry_attention_backend(source: Any, target: Any) -> None:
    """Copy the attention backend and parallel config set on processor `source` (an instance attribute where
    `set_attention_backend` or `enable_parallelism` ran) onto processor `target`."""
    for name in ATTENTION_BACKEND_SETTINGS:
        if name in vars(source):
            setattr(target, name, vars(source)[name])


def repeated_block_classes(transformer: torch.nn.Module) -> set[str]:
    """Class names of the blocks `transformer.compile_repeated_blocks()` compiles (its class's private
    `_repeated_blocks` list; empty where the model declares none, e.g. FramePack and EasyAnimate)."""
    return set(getattr(transformer, "_repeated_blocks", None) or ())


def has_context_parallel_plan(transformer: torch.nn.Module) -> bool:
    """Whether `enable_parallelism` can split `transformer` (its class declares the private `_cp_plan`)."""
    return getattr(transformer, "_cp_plan", None) is not None


def interrupt(pipe: Any) -> None:
    """Make a diffusers pipeline stop before its next denoising step, from a step-end callback: the pipelines
    read the private `_interrupt` flag (exposed read-only as `pipe.interrupt`), the way diffusers' own
    documentation of pipeline callbacks stops them."""
    pipe._interrupt = True


class StatefulHook(ModelHook):
    """A `ModelHook` whose `reset_state` `HookRegistry.reset_stateful_hooks` calls (pipelines do at the end of
    each call): the registry reads the private class flag `_is_stateful` set here."""

    _is_stateful = True


def compile_beneath(hook: ModelHook, **compile_kwargs: Any) -> None:
    """torch.compile the forward that a registered `ModelHook` wraps (its `fn_ref.original_forward`, which the
    hook calls and `HookRegistry.remove_hook` puts back on the module), leaving the hook itself eager."""
    hook.fn_ref.original_forward = torch.compile(hook.fn_ref.original_forward, **compile_kwargs)


def layer_skip_hook_name() -> str:
    """The registry name `diffusers.hooks.apply_layer_skip` gives its hooks (a private constant)."""
    from diffusers.hooks.layer_skip import _LAYER_SKIP_HOOK

    return _LAYER_SKIP_HOOK


def register_wan_attention_for_layer_skip() -> None:
    """diffusers 0.42 registers the layer-skip metadata of Wan's attention under the deprecated class name
    WanAttnProcessor2_0, while Wan's attention modules run WanAttnProcessor, so PAG's hooks fail to find it; give
    WanAttnProcessor the same metadata in the private processor registry of `diffusers.hooks`."""
    from diffusers.hooks._helpers import AttentionProcessorRegistry
    from diffusers.models.transformers.transformer_wan import WanAttnProcessor, WanAttnProcessor2_0

    try:
        AttentionProcessorRegistry.get(WanAttnProcessor)
    except ValueError:
        AttentionProcessorRegistry.register(WanAttnProcessor, AttentionProcessorRegistry.get(WanAttnProcessor2_0))
