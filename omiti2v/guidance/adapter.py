"""`apply_guidance`: one small adapter around the denoiser call that runs a guidance method instead of the
pipeline's inline CFG.

The standard pipelines (Wan, SkyReels) combine classifier-free guidance inline. With a method installed, the
pipeline runs with its own CFG off (`GuidanceHandle.prepare` sets `guidance_scale` 1.0, so it calls the
transformer once per step with the conditional inputs) and every such call becomes the method's step: a diffusers
`ModelHook` on the transformer runs the passes the method plans (`omiti2v.guidance.methods`) through the original
forward, with the negative prompt's embeddings for the unconditional passes, the diffusers layer-skip hooks for
the perturbed one and the low-passed image latents for alg, and returns the method's combination. The step index
is the count of calls since `prepare` (both experts of Wan2.2 share it); diffusers resets the hook at the end of
every pipeline call (`maybe_free_model_hooks`), so a call that was not prepared fails loudly instead of reusing
another sample's negative prompt. Nothing is installed for method none: the pipeline's code path is untouched.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from dataclasses import dataclass, replace
from typing import Any

import torch
from diffusers.hooks import HookRegistry
from diffusers.models.modeling_outputs import Transformer2DModelOutput

from omiti2v.asm.hooks import transformers_of
from omiti2v.compat.diffusers import StatefulHook
from omiti2v.guidance.config import PERTURBING, GuidanceConfig
from omiti2v.guidance.methods import (
    COND_LOW,
    SKIP,
    UNCOND,
    UNCOND_LOW,
    GuidanceMethod,
    build_method,
    low_pass,
)

log = logging.getLogger(__name__)

HOOK_NAME = "omiti2v_guidance"
PIPELINE_CFG_KEYS = ("guidance_scale", "guidance_scale_2")  # Wan2.2: one per expert


@dataclass
class GuidanceState:
    """Per pipeline call, shared by the hooks of every denoiser. `forwards` / `steps` of the last call survive
    the reset, for tests and records."""

    step: int = 0
    num_steps: int | None = None
    unconditional: dict[str, torch.Tensor] | None = None
    forwards: int = 0

    def start(self, unconditional: dict[str, torch.Tensor] | None, num_steps: int, step: int = 0) -> None:
        self.step, self.num_steps, self.unconditional, self.forwards = step, int(num_steps), unconditional, 0

    def end(self) -> None:
        self.num_steps, self.unconditional = None, None


class GuidedDenoiser(StatefulHook):
    """The hook: one call of the wrapped transformer = one guided step (see the module docstring)."""

    def __init__(self, method: GuidanceMethod, state: GuidanceState, transformer: torch.nn.Module):
        super().__init__()
        self.method, self.state = method, state
        self.signature = inspect.signature(type(transformer).forward)
        self.latent_channels = int(transformer.config.out_channels)

    def new_forward(self, module: torch.nn.Module, *args, **kwargs):
        inputs = dict(self.signature.bind(module, *args, **kwargs).arguments)
        inputs.pop(next(iter(self.signature.parameters)))  # self
        return_dict = inputs.pop("return_dict", True)
        state = self.state
        if state.num_steps is None:
            raise RuntimeError(f"guidance {self.method.name}: the pipeline call was not prepared "
                               "(GuidanceHandle.prepare before every pipeline call)")
        if state.step >= state.num_steps:
            raise RuntimeError(f"guidance {self.method.name}: more transformer calls than the {state.num_steps} "
                               "steps prepared")
        passes = self.method.passes(state.step, state.num_steps, inputs["timestep"])
        predictions = {name: self.run_pass(module, inputs, name) for name in passes}
        state.step += 1
        state.forwards += len(passes)
        prediction = self.method.combine(predictions)
        return Transformer2DModelOutput(sample=prediction) if return_dict else (prediction,)

    def run_pass(self, module: torch.nn.Module, inputs: dict[str, Any], name: str) -> torch.Tensor:
        kwargs = dict(inputs)
        if name in (UNCOND, UNCOND_LOW):
            kwargs["encoder_hidden_states"] = self.unconditional_text(inputs["encoder_hidden_states"])
        if name in (COND_LOW, UNCOND_LOW):
            hidden = inputs["hidden_states"]
            latents, condition = hidden[:, :self.latent_channels], hidden[:, self.latent_channels:]
            kwargs["hidden_states"] = torch.cat([latents, low_pass(condition, self.method.config.resize_factor)], 1)
        context = self.method.perturbed(module) if name == SKIP else contextlib.nullcontext()
        with context:
            return self.fn_ref.original_forward(**kwargs, return_dict=False)[0]

    def unconditional_text(self, conditional: torch.Tensor) -> torch.Tensor:
        text = self.state.unconditional["encoder_hidden_states"].to(device=conditional.device, dtype=conditional.dtype)
        return text.expand(conditional.shape[0], *text.shape[1:]) if text.shape[0] != conditional.shape[0] else text

    def reset_state(self, module: torch.nn.Module) -> torch.nn.Module:
        self.state.end()
        return module


class GuidanceHandle:
    """Installed guidance; `remove()` (or leaving the `with` block) restores the denoisers as they were."""

    def __init__(self, config: GuidanceConfig, method: GuidanceMethod | None, modules: list[torch.nn.Module]):
        self.config, self.method, self.state = config, method, GuidanceState()
        self._modules = []
        try:
            for module in modules:
                HookRegistry.check_if_exists_or_initialize(module).register_hook(
                    GuidedDenoiser(method, self.state, module), HOOK_NAME)
                self._modules.append(module)
        except Exception:
            self.remove()
            raise

    def start(self, unconditional: dict[str, torch.Tensor] | None, num_steps: int, step: int = 0) -> None:
        """Arm the hooks for one sampling loop of `num_steps` steps (from `step`), with the unconditional inputs
        (`encoder_hidden_states` of the negative prompt) where the method needs them."""
        if self.config.needs_unconditional and not unconditional:
            raise ValueError(f"guidance {self.config.method} runs an unconditional pass: pass its inputs")
        self.state.start(unconditional, num_steps, step)

    def prepare(self, pipe: Any, call_kwargs: dict[str, Any]) -> dict[str, Any]:
        """Before each pipeline call: encode the negative prompt with the pipeline's own `encode_prompt`, arm the
        hooks for the call's steps and return the call's arguments with the pipeline's inline CFG off."""
        if self.method is None:
            return call_kwargs
        parameters = inspect.signature(pipe.__call__).parameters
        steps = int(call_kwargs.get("num_inference_steps", parameters["num_inference_steps"].default))
        unconditional = None
        if self.config.needs_unconditional:
            length = call_kwargs.get("max_sequence_length", parameters["max_sequence_length"].default)
            with torch.no_grad():
                embeds, _ = pipe.encode_prompt(prompt=self.config.negative_prompt, do_classifier_free_guidance=False,
                                               max_sequence_length=length)
            unconditional = {"encoder_hidden_states": embeds}
        self.start(unconditional, steps)
        off = {key: 1.0 for key in PIPELINE_CFG_KEYS if key in call_kwargs or key == "guidance_scale"}
        return {**call_kwargs, **off}

    @property
    def forwards(self) -> int:
        """Transformer forwards the latest (or current) sampling loop ran."""
        return self.state.forwards

    def remove(self) -> None:
        for module in self._modules:
            HookRegistry.check_if_exists_or_initialize(module).remove_hook(HOOK_NAME, recurse=False)
        self._modules = []

    def __enter__(self) -> GuidanceHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def apply_guidance(pipe_or_transformer: Any, config: GuidanceConfig) -> GuidanceHandle:
    """Install `config` (resolved: `GuidanceConfig.resolved`) on every denoiser of `pipe_or_transformer`; method
    none installs nothing."""
    if not config.active:
        return GuidanceHandle(config, None, [])
    if config.method in ("stg", "pag", "alg") and config.cfg_scale is None:
        raise ValueError(f"guidance {config.method}: resolve cfg_scale first (GuidanceConfig.resolved)")
    modules = transformers_of(pipe_or_transformer)
    for module in modules:
        if config.method == "alg" and module.config.in_channels <= module.config.out_channels:
            raise ValueError(f"guidance alg low-passes the image latents the transformer reads beside the noisy "
                             f"latents; {type(module).__name__} has none (in_channels {module.config.in_channels})")
    if config.method in PERTURBING:
        config = fit_blocks(config, min(int(module.config.num_layers) for module in modules))
    return GuidanceHandle(config, build_method(config), modules)


def fit_blocks(config: GuidanceConfig, depth: int) -> GuidanceConfig:
    """stg / pag blocks past the model's last (a tiny test model) become its last block, logged; the handle's
    config (and so the run's record) carries the blocks used."""
    fitted = tuple(sorted({min(block, depth - 1) for block in config.blocks}))
    if fitted != config.blocks:
        log.info("guidance %s: blocks %s moved into the model's %d blocks: %s", config.method, list(config.blocks),
                 depth, list(fitted))
    return replace(config, blocks=fitted)
