"""ASM's state on one transformer across the denoising steps, the same for every strategy (`StepGate`).

Each module a strategy hooks carries three things: its value(s) in a float32 buffer (the scalar strategy's 0-dim
factor, or one strength per attention call of an intercepted attention module), a call counter buffer (`CALLS`)
and, on the host, whether each value is the strategy's identity (`IDLE`). The lifecycle:

* install: the buffers at the identity; a forward pre-hook and a forward hook on the transformer.
* each transformer call, in the pre-hook: the timestep is recorded (`TimestepTracker`'s rule); when the step
  enters or leaves the window, the selected modules' buffers are written in place (their active values inside,
  the identity outside), eagerly, so compiled blocks read them as graph inputs and no graph depends on the step;
  inside the window the counters that the bypass check reads are zeroed. Eager handlers may skip their work
  where `IDLE` says the value is the identity; compiled graphs never read it, so it adds no guard.
* after each in-window call, the bypass check (below).
* remove: the hooks off, the buffers and flags deleted; the model is as it was.

Fail loudly: the hooks count their calls; after an in-window forward, a selected call whose modules never ran
raises `ASMBypassedError` (e.g. a diffusers refactor no longer calls ``norm_k``). A forward in which no counted
module ran at all skipped the block stack (TeaCache reusing its cache) and passes, except on the first in-window
forward of the installation, which must see every selected call.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

from omiti2v.asm.config import ASMConfig
from omiti2v.asm.gating import TimestepTracker

CALLS = "_asm_calls"  # buffer: calls counted since the pre-hook (one per value)
IDLE = "_asm_idle"  # host attribute: per value, whether it is the strategy's identity


class ASMBypassedError(RuntimeError):
    """A selected attention call was never intercepted in a forward inside the step window."""


def raise_if_bypassed(module: torch.nn.Module, timestep: float | None, names: list[str], counts: list[int],
                      seen_before: bool) -> bool:
    """The bypass rule of the module docstring for one in-window forward; returns whether calls were seen."""
    if not any(counts) and seen_before:
        return True  # the block stack was skipped (cached step)
    missing = [name for name, count in zip(names, counts, strict=True) if count == 0]
    if missing:
        raise ASMBypassedError(
            f"ASM saw no attention call at {len(missing)} of {len(counts)} selected sites of {type(module).__name__} "
            f"at t={timestep:g} (first: {', '.join(missing[:3])}): the attention no longer runs the code ASM "
            "hooks; ASM would be a silent no-op")
    return True


class StepGate(TimestepTracker):
    """One strategy installed on one transformer: the state machine of the module docstring. A strategy
    declares its modules inside `installing()` (`add`, `select`, `witness`, `keep`); `remove()` undoes it all."""

    def __init__(self, transformer: torch.nn.Module, config: ASMConfig, value_name: str, identity: float):
        super().__init__(transformer)
        self.config, self.value_name, self.identity = config, value_name, identity
        self._device = next(transformer.parameters()).device
        self._hooked: list[torch.nn.Module] = []
        self._active_values: list[tuple[torch.nn.Module, tuple[float, ...]]] = []
        self._witnesses: list[tuple[str, torch.nn.Module, int]] = []
        self._counted: list[torch.nn.Module] = []
        self._handles: list[Any] = [transformer.register_forward_hook(self._check)]
        self._active: bool | None = None
        self._seen_in_window = False

    @contextlib.contextmanager
    def installing(self) -> Iterator[None]:
        """Wraps a strategy's installation: if it fails, what it installed so far is removed."""
        try:
            yield
        except BaseException:
            self.remove()
            raise

    def add(self, module: torch.nn.Module, label: str, calls: int | None = None) -> None:
        """Give `module` its buffers at the identity: one value per attention call, or (`calls` None) a 0-dim one."""
        if self.value_name in dict(module.named_buffers(recurse=False)):
            raise RuntimeError(f"{label}: ASM is already installed on this transformer")
        shape = () if calls is None else (calls,)
        module.register_buffer(self.value_name, torch.full(shape, self.identity, device=self._device),
                               persistent=False)
        module.register_buffer(CALLS, torch.zeros(shape, dtype=torch.int64, device=self._device), persistent=False)
        setattr(module, IDLE, [True] * (calls or 1))
        self._hooked.append(module)

    def select(self, module: torch.nn.Module, values: tuple[float, ...]) -> None:
        """`module`'s values inside the window (one per value of its buffer)."""
        self._active_values.append((module, values))

    def witness(self, name: str, module: torch.nn.Module, index: int = 0) -> None:
        """Value `index` of `module` counts the calls of selected site `name` for the bypass check."""
        self._witnesses.append((name, module, index))
        if module not in self._counted:
            self._counted.append(module)

    def keep(self, handle: Any) -> None:
        """A hook or interception handle of the strategy's, for `remove()`."""
        self._handles.append(handle)

    def _record(self, module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        super()._record(module, args, kwargs)
        active = self.config.step_active(self.current)
        if active != self._active:
            for hooked, values in self._active_values:
                self._write(hooked, values if active else (self.identity,) * len(values))
            self._active = active
        if active:
            for hooked in self._counted:
                getattr(hooked, CALLS).zero_()

    def _write(self, module: torch.nn.Module, values: tuple[float, ...]) -> None:
        buffer = getattr(module, self.value_name)
        if len(values) == 1:
            buffer.fill_(values[0])
        else:
            buffer.copy_(torch.tensor(values))
        setattr(module, IDLE, [value == self.identity for value in values])

    def _check(self, module: torch.nn.Module, args: tuple, output: Any) -> None:
        if not self._active or not self._witnesses:
            return
        counts = torch.stack([getattr(hooked, CALLS).reshape(-1)[index] for _, hooked, index in self._witnesses])
        self._seen_in_window = raise_if_bypassed(module, self.current, [name for name, *_ in self._witnesses],
                                                 counts.tolist(), self._seen_in_window)

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        super().remove()
        for module in self._hooked:
            for name in (self.value_name, CALLS):
                if name in dict(module.named_buffers(recurse=False)):
                    delattr(module, name)
            vars(module).pop(IDLE, None)
        self._handles, self._hooked, self._active_values, self._witnesses, self._counted = [], [], [], [], []
