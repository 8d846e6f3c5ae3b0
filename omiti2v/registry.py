"""One registry kind for everything looked up by name: baselines, metrics, flow backends, judges, pipeline stages,
CLI commands, config rule tables, and the lazy exports of the heavy subpackages.

An entry is either registered where it is defined (`@REG.register(name)`), or declared lazily as
"module:attribute" (`REG.declare(name, "pkg.mod:Class")`) and imported on its first lookup, so that listing the
names (the config check, `omiti2v --help`) imports neither torch nor diffusers. As lm-evaluation-harness's
registry does, a name is registered once, and every entry must be of the registry's kind (`base`), checked when
it is registered or, for a lazy entry, when it loads.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from .errors import SetupError


class UnknownNameError(SetupError, KeyError, ValueError):
    """A name that no entry of a registry has; the message names the config key and the closest names."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


def closest(name: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """The choices most like `name` (a typo's likely intent), best first: those nearly as similar as the best
    one, at most `n`."""
    scored = sorted(((difflib.SequenceMatcher(None, str(name), c).ratio(), c) for c in dict.fromkeys(choices)),
                    key=lambda pair: -pair[0])
    best = scored[0][0] if scored else 0.0
    return [c for ratio, c in scored[:n] if ratio >= max(0.5, best - 0.1)]


def unknown_choice(key: str, name: object, choices: Iterable[str]) -> str:
    """One line for a value that is none of `choices`: the closest ones first, else all of them."""
    choices = sorted(choices)
    near = closest(str(name), choices)
    hint = f"did you mean {' or '.join(near)}?" if near else f"expected one of {', '.join(choices)}"
    return f"{key}: unknown value {name!r}; {hint}"


def load_target(target: str) -> Any:
    """The object named by "package.module:attribute" (or the module itself for "package.module")."""
    module, _, attribute = target.partition(":")
    loaded = importlib.import_module(module)
    return getattr(loaded, attribute) if attribute else loaded


class Registry(Mapping[str, Any]):
    """name -> entry. Iterating, `len` and `in` see the names only; indexing loads a lazy entry.

    `kind` names what the names select (a config key such as "model.baseline", or "omiti2v command") and heads
    every error; `base` (a type, or "module:Type" resolved on first check) is what each entry must be a
    subclass (classes) or an instance (anything else) of; `name_attr`, when given, is set on a class entry to
    the name it is registered under."""

    def __init__(self, kind: str, base: type | str | None = None, name_attr: str | None = None):
        self.kind = kind
        self._base = base
        self.name_attr = name_attr
        self._targets: dict[str, str] = {}
        self._loaded: dict[str, Any] = {}
        self._summaries: dict[str, str] = {}

    # -- filling -------------------------------------------------------------------------------------------------

    def _claim(self, name: str) -> None:
        if name in self._targets or name in self._loaded:
            where = self._targets.get(name) or getattr(self._loaded[name], "__qualname__", repr(self._loaded[name]))
            raise ValueError(f"{self.kind}: {name!r} registered twice (already {where})")

    def register(self, name: str) -> Callable[[Any], Any]:
        """Decorator: register the decorated class or function under `name` now."""

        def add(entry: Any) -> Any:
            self._claim(name)
            self._loaded[name] = self._checked(name, entry)
            return entry

        return add

    def declare(self, name: str, target: str, summary: str = "") -> None:
        """Declare `name` as "module:attribute", imported on its first lookup; `summary` is a one-line description
        readable without importing it (`summary(name)`)."""
        self._claim(name)
        self._targets[name] = target
        if summary:
            self._summaries[name] = summary

    def declare_all(self, targets: Mapping[str, str | tuple[str, str]]) -> Registry:
        """Declare every name -> "module:attribute" (or ("module:attribute", summary)); returns the registry."""
        for name, target in targets.items():
            self.declare(name, *((target,) if isinstance(target, str) else target))
        return self

    # -- reading -------------------------------------------------------------------------------------------------

    def names(self) -> tuple[str, ...]:
        return (*self._loaded, *(n for n in self._targets if n not in self._loaded))

    def target(self, name: str) -> str | None:
        """The "module:attribute" a lazy entry was declared with (None for one registered in place)."""
        return self._targets.get(name)

    def summary(self, name: str) -> str:
        return self._summaries.get(name, "")

    def __contains__(self, name: object) -> bool:
        return name in self._loaded or name in self._targets

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def __getitem__(self, name: str) -> Any:
        if name in self._loaded:
            return self._loaded[name]
        if name not in self._targets:
            raise UnknownNameError(unknown_choice(self.kind, name, self.names()))
        entry = self._checked(name, load_target(self._targets[name]))
        self._loaded[name] = entry
        return entry

    def lookup(self, name: str) -> Any:
        """The entry for `name` (loading it); an unknown name raises UnknownNameError with the closest names."""
        return self[name]

    # -- checks ----------------------------------------------------------------------------------------------------

    def _checked(self, name: str, entry: Any) -> Any:
        base = load_target(self._base) if isinstance(self._base, str) else self._base
        if base is not None:
            ok = issubclass(entry, base) if isinstance(entry, type) else isinstance(entry, base)
            if not ok:
                raise TypeError(f"{self.kind}: entry {name!r} ({entry!r}) is not a {base.__name__}")
        if self.name_attr and isinstance(entry, type):
            owner = entry.__dict__.get(self.name_attr)
            if owner not in (None, "", name):
                raise ValueError(f"{self.kind}: {entry.__qualname__} is registered as {owner!r} and {name!r}")
            setattr(entry, self.name_attr, name)
        return entry


class LazyModule:
    """Stands for module `name` and imports it on the first attribute access: for a heavy module that code uses
    only inside functions, so that importing that code (the preflight reads a baseline's settings) does not
    import it. Not placed in sys.modules, so nothing that scans the loaded modules triggers the import."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        return getattr(importlib.import_module(self._name), attribute)


def lazy_exports(package: str, exports: Mapping[str, Iterable[str]]) -> Callable[[str], Any]:
    """A package's PEP 562 `__getattr__`: each exported name is imported from its submodule on first use, so
    importing the package (or a light submodule of it) does not import its heavy dependencies.
    `exports`: relative submodule (".config") -> the names it exports."""
    registry = Registry(f"module {package}")
    for module, names in exports.items():
        for name in names:
            registry.declare(name, f"{package}{module}:{name}")

    def __getattr__(name: str) -> Any:
        if name not in registry:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return registry[name]

    return __getattr__
