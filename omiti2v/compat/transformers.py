"""Reaches into transformers (5.x) internals: the attention implementation a config runs, the key/value cache's
field name, Qwen-VL's multimodal RoPE positions and the rotary function of its vision tower."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import sys
from collections.abc import Callable
from typing import Any

import torch


def attention_implementation(config: Any) -> str:
    """The attention implementation a model config runs ("sdpa", "eager", "flash_attention_2", ...):
    transformers keeps it in the private `_attn_implementation` property of `PretrainedConfig` and has no public
    getter (`set_attn_implementation` only sets it)."""
    return str(config._attn_implementation)


@functools.cache
def kv_cache_field() -> str:
    """The name transformers gives the key/value cache in model outputs and `generate` kwargs: `cache` since
    5.2x, `past_key_values` before (the project accepts transformers >= 5.0)."""
    from transformers.modeling_outputs import CausalLMOutputWithPast

    names = {field.name for field in dataclasses.fields(CausalLMOutputWithPast)}
    return "cache" if "cache" in names else "past_key_values"


def rope_positions(model: torch.nn.Module, input_ids: torch.Tensor, **inputs: Any) -> torch.Tensor:
    """The multimodal RoPE position ids, shaped (3, batch, length), a Qwen2.5-VL / Qwen3-VL model gives
    `input_ids` with its visual inputs (`video_grid_thw`, `attention_mask`, ...; those its rule does not take are
    dropped). The rule lives in the inner model's `get_rope_index`, not a documented API: its arguments differ
    between Qwen2.5-VL and Qwen3-VL and across transformers versions."""
    get_rope_index = model.model.get_rope_index
    accepted = inspect.signature(get_rope_index).parameters
    positions, _ = get_rope_index(input_ids, **{k: v for k, v in inputs.items() if k in accepted})
    return positions


def vision_rotary(module: torch.nn.Module) -> Callable[..., tuple[torch.Tensor, torch.Tensor]]:
    """`apply_rotary_pos_emb_vision(q, k, cos, sin)` of the modelling file a Qwen-VL vision attention module
    comes from: a module-level function of that file, not exported by transformers."""
    return sys.modules[type(module).__module__].apply_rotary_pos_emb_vision
