"""TeaCache for FramePack / FramePack-F1, as the official inference scripts run it (models/FramePack/ of
https://github.com/LAW1223/AlignVid: `--teacache` on by default, the transformer's TeaCache step), written as
diffusers cache hooks (`TeaCacheConfig` + `apply_teacache`, `ModelHook`s in the modules' `HookRegistry`).

Per transformer call, the modulated input of the first dual-stream block's norm1 (embedded hidden states and
time embedding) is compared with the previous call's: rel = mean|x - x_prev| / mean|x_prev|. A running distance
grows by poly(rel); the block stack is computed when it reaches the threshold (then it resets to 0) and always
on the first and last call of each section (the call counter restarts every `num_steps` calls: one call per
step at cfg 1). Otherwise every block is passed through and the last single block adds the residual
(output - input of the stack) of the latest computed call. The compared input is updated on every call; the
text stream is not cached; norm_out/proj_out run as usual, with the current time embedding.

On a skipped call no attention runs, so ASM acts only on computed calls (its pre-hook on the transformer still
sees every call's timestep). The decision is made in the head block's hook and the other hooks branch on its
Python bool; under `generation.compile=regional` the blocks' own forwards are compiled beneath the hooks
(`TeaCacheHandle.compile_blocks`), so the hooks stay eager and no graph depends on the decision.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from diffusers.hooks import HookRegistry, ModelHook

from omiti2v.compat.diffusers import StatefulHook, compile_beneath

HOOK_NAME = "omiti2v_teacache"
# Official FramePack (HunyuanVideo) rescale polynomial, highest power first.
FRAMEPACK_COEFFICIENTS = (7.33226126e02, -4.01131952e02, 6.75869174e01, -3.14987800e00, 9.61237896e-02)


@dataclass
class TeaCacheConfig:
    """rel_l1_thresh: 0 computes every call (FramePack's official value: conf/model/framepack.yaml); num_steps:
    transformer calls per section (the sampling steps at cfg 1); coefficients: the rescale polynomial, highest
    power first."""

    rel_l1_thresh: float
    num_steps: int
    coefficients: tuple[float, ...] = FRAMEPACK_COEFFICIENTS


@dataclass
class TeaCacheState:
    """Shared by the hooks of one transformer. `reset()` (diffusers calls it at the end of every pipeline call,
    through `reset_stateful_hooks`) clears the cache; `computed`, one bool per call, survives it for the stats."""

    call_index: int = 0                      # within the current section
    distance: float = 0.0
    previous_modulated: torch.Tensor | None = None
    stack_input: torch.Tensor | None = None
    residual: torch.Tensor | None = None
    compute: bool = True
    computed: list[bool] = field(default_factory=list)

    def reset(self) -> None:
        computed = self.computed
        self.__init__()
        self.computed = computed


def _arg(args: tuple, kwargs: dict, index: int, name: str):
    return args[index] if len(args) > index else kwargs[name]


class _HeadBlockHook(StatefulHook):
    """On transformer_blocks[0]: decides compute/skip for this call from its modulated input."""

    def __init__(self, state: TeaCacheState, config: TeaCacheConfig):
        super().__init__()
        self.state, self.config = state, config
        self.rescale = np.poly1d(config.coefficients)

    def _decide(self, modulated: torch.Tensor) -> bool:
        s, n = self.state, self.config.num_steps
        if s.call_index in (0, n - 1) or s.previous_modulated is None:
            compute, s.distance = True, 0.0
        else:
            prev = s.previous_modulated
            rel = ((modulated - prev).abs().mean() / prev.abs().mean()).item()
            s.distance += float(self.rescale(rel))
            compute = s.distance >= self.config.rel_l1_thresh
            if compute:
                s.distance = 0.0
        s.previous_modulated = modulated
        s.call_index = (s.call_index + 1) % n
        s.compute = compute
        s.computed.append(compute)
        return compute

    def new_forward(self, module: torch.nn.Module, *args, **kwargs):
        hidden = _arg(args, kwargs, 0, "hidden_states")
        modulated = module.norm1(hidden, emb=_arg(args, kwargs, 2, "temb"))[0]
        if self._decide(modulated):
            self.state.stack_input = hidden
            return self.fn_ref.original_forward(*args, **kwargs)
        return hidden, _arg(args, kwargs, 1, "encoder_hidden_states")

    def reset_state(self, module):
        self.state.reset()
        return module


class _BlockHook(ModelHook):
    """On every other block: run it on computed calls, pass through on skipped ones; the tail block records
    (computed) or adds (skipped) the residual of the whole stack."""

    def __init__(self, state: TeaCacheState, is_tail: bool):
        super().__init__()
        self.state, self.is_tail = state, is_tail

    def new_forward(self, module: torch.nn.Module, *args, **kwargs):
        if self.state.compute:
            hidden, encoder = self.fn_ref.original_forward(*args, **kwargs)
            if self.is_tail:
                self.state.residual = hidden - self.state.stack_input
                self.state.stack_input = None
            return hidden, encoder
        hidden, encoder = _arg(args, kwargs, 0, "hidden_states"), _arg(args, kwargs, 1, "encoder_hidden_states")
        return (hidden + self.state.residual if self.is_tail else hidden), encoder


class TeaCacheHandle:
    """Installed TeaCache: statistics since the last `reset()` (call it before each video), `remove()` restores
    the blocks."""

    def __init__(self, transformer: torch.nn.Module, state: TeaCacheState, config: TeaCacheConfig,
                 hooks: list[ModelHook]):
        self.transformer, self.state, self.config = transformer, state, config
        self._hooks = hooks

    def compile_blocks(self, **compile_kwargs) -> int:
        """torch.compile each block's own forward beneath its hook (what the hook calls on computed calls);
        returns how many. The compiled forward stays on the block after `remove()`."""
        for hook in self._hooks:
            compile_beneath(hook, **compile_kwargs)
        return len(self._hooks)

    def stats(self) -> dict:
        """Calls computed and skipped since the last reset, and the pattern per section ('C'/'S' per call)."""
        marks = "".join("C" if c else "S" for c in self.state.computed)
        n = self.config.num_steps
        return {"rel_l1_thresh": self.config.rel_l1_thresh, "computed": marks.count("C"),
                "skipped": marks.count("S"), "sections": [marks[k:k + n] for k in range(0, len(marks), n)]}

    def reset(self) -> None:
        """Clear the cache and the statistics (before each video)."""
        self.state.reset()
        self.state.computed.clear()

    def remove(self) -> None:
        HookRegistry.check_if_exists_or_initialize(self.transformer).remove_hook(HOOK_NAME, recurse=True)
        del self.transformer._omiti2v_teacache


def apply_teacache(transformer: torch.nn.Module, config: TeaCacheConfig) -> TeaCacheHandle:
    """Install TeaCache on a HunyuanVideo(-FramePack) transformer (`transformer_blocks`, then
    `single_transformer_blocks`). Returns the handle; `teacache_handle(transformer)` finds it again."""
    if getattr(transformer, "_omiti2v_teacache", None) is not None:
        raise ValueError("TeaCache is already installed on this transformer; remove() it first")
    blocks = list(transformer.transformer_blocks) + list(transformer.single_transformer_blocks)
    state = TeaCacheState()
    hooks = [_HeadBlockHook(state, config), *(_BlockHook(state, is_tail=index == len(blocks) - 1)
                                              for index in range(1, len(blocks)))]
    for block, hook in zip(blocks, hooks, strict=True):
        HookRegistry.check_if_exists_or_initialize(block).register_hook(hook, HOOK_NAME)
    handle = TeaCacheHandle(transformer, state, config, hooks)
    transformer._omiti2v_teacache = handle
    return handle


def teacache_handle(transformer: torch.nn.Module) -> TeaCacheHandle | None:
    """The TeaCache installed on `transformer`, if any."""
    return getattr(transformer, "_omiti2v_teacache", None)
