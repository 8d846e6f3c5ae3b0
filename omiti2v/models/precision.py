"""Per-component precision (`model.precision`) as the official generation scripts set it.

`model.dtype` is the pipeline's dtype; `model.precision` names the components that run in another one:
  <component>: dtype       that pipeline component in this dtype (official Wan2.1: CLIP image encoder float16,
                           VAE float32; official FramePack: Llama and CLIP-L text encoders, SigLIP and VAE float16);
  transformer: float32     float32 weights run under `dtype` autocast (official Wan2.1), with the time embedding
                           and the output head outside it, as the official model computes them in float32;
  output_projection: float32   the transformer's last linear layer (proj_out) in float32 on a float32 input
                           (official FramePack's `high_quality_fp32_output_for_inference`).
Both transformer rules are diffusers `ModelHook`s (removable; the blocks themselves are untouched, so regional
compilation still applies).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from diffusers.hooks import HookRegistry, ModelHook

from .settings import PRECISION_SPECIAL_KEYS

AUTOCAST_HOOK = "omiti2v_autocast"
FLOAT32_HOOK = "omiti2v_float32"
# Submodules of diffusers' WanTransformer3DModel that the official WanModel runs in float32 under its bf16 autocast
# (its time embedding and projection, its output head); a missing one is an error, not a silent skip.
WAN_FLOAT32_MODULES = ("condition_embedder.time_embedder", "condition_embedder.time_proj", "proj_out")


def component_dtypes(precision: Mapping, dtypes: Mapping[str, torch.dtype]) -> dict[str, torch.dtype]:
    """{pipeline component: dtype} of the components stored in another dtype than `model.dtype`."""
    return {k: dtypes[v] for k, v in (precision or {}).items() if v is not None and k not in PRECISION_SPECIAL_KEYS}


def cast_module(module: torch.nn.Module, dtype: torch.dtype, buffers: bool = True) -> torch.nn.Module:
    """Cast the floating parameters (and buffers) one at a time (peak: the module plus one tensor); the submodules
    the class keeps in float32 when loading pretrained weights (`_keep_in_fp32_modules`) go to float32 instead, as
    `from_pretrained(torch_dtype=...)` leaves them."""
    keep = set(getattr(module, "_keep_in_fp32_modules", None) or ())
    with torch.no_grad():
        for name, tensor in [*module.named_parameters(), *(module.named_buffers() if buffers else ())]:
            target = torch.float32 if keep.intersection(name.split(".")) else dtype
            if tensor.is_floating_point() and tensor.dtype != target:
                tensor.data = tensor.data.to(target)
    return module


def cast_components(pipe, dtypes: Mapping[str, torch.dtype]) -> None:
    """Cast each named pipeline component (random and tiny builds; pretrained ones load in their dtype)."""
    for name, dtype in dtypes.items():
        cast_module(getattr(pipe, name), dtype)


def _device_type(module: torch.nn.Module) -> str:
    return next(module.parameters()).device.type


class _AutocastHook(ModelHook):
    """Runs the module's forward under autocast to `dtype` on the module's device."""

    def __init__(self, dtype: torch.dtype):
        super().__init__()
        self.dtype = dtype

    def new_forward(self, module, *args, **kwargs):
        with torch.autocast(_device_type(module), dtype=self.dtype):
            return self.fn_ref.original_forward(*args, **kwargs)


class _Float32Hook(ModelHook):
    """Runs the module's forward in float32: autocast off, floating tensor inputs cast to float32."""

    def new_forward(self, module, *args, **kwargs):
        def up(value):
            return value.float() if torch.is_tensor(value) and value.is_floating_point() else value

        with torch.autocast(_device_type(module), enabled=False):
            return self.fn_ref.original_forward(*map(up, args), **{k: up(v) for k, v in kwargs.items()})


class _FloatOutputHook(ModelHook):
    """Hands the module's output on in float32 (computed in whatever autocast chose)."""

    def post_forward(self, module, output):
        return output.float()


class PrecisionHandle:
    """The hooks installed on one transformer; `remove()` takes them off (weights stay in their dtype)."""

    def __init__(self, modules: list[torch.nn.Module], name: str):
        self.modules, self.name = modules, name

    def remove(self) -> None:
        for module in self.modules:
            HookRegistry.check_if_exists_or_initialize(module).remove_hook(self.name, recurse=False)


def _register(module: torch.nn.Module, hook: ModelHook, name: str) -> None:
    HookRegistry.check_if_exists_or_initialize(module).register_hook(hook, name)


def apply_float32_autocast(transformer: torch.nn.Module, compute_dtype: torch.dtype,
                           float32_modules: tuple[str, ...] = WAN_FLOAT32_MODULES) -> list[PrecisionHandle]:
    """Official Wan2.1 precision for a transformer whose weights are float32: the forward under `compute_dtype` autocast (matmuls and
    convolutions in it; norms, residual adds and modulation stay float32 as diffusers' Wan blocks compute them
    from a float32 stream), `float32_modules` entirely in float32. The patch embedding's output is handed on in
    float32, so the residual stream is float32 from the first block on, as in the official model."""
    _register(transformer, _AutocastHook(compute_dtype), AUTOCAST_HOOK)
    islands = [transformer.get_submodule(name) for name in float32_modules]
    for module in islands:
        _register(module, _Float32Hook(), FLOAT32_HOOK)
    embed = transformer.patch_embedding
    _register(embed, _FloatOutputHook(), FLOAT32_HOOK)
    return [PrecisionHandle([transformer], AUTOCAST_HOOK), PrecisionHandle([*islands, embed], FLOAT32_HOOK)]


def apply_float32_output_projection(transformer: torch.nn.Module) -> PrecisionHandle:
    """Official FramePack: proj_out's weights in float32, fed the (bf16) normalised hidden states cast to float32."""
    transformer.proj_out.to(torch.float32)
    _register(transformer.proj_out, _Float32Hook(), FLOAT32_HOOK)
    return PrecisionHandle([transformer.proj_out], FLOAT32_HOOK)
