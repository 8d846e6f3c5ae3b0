"""Decorator registries: baselines, metrics and flow backends are looked up by the name a config gives."""

from __future__ import annotations

from collections.abc import Callable


class Registry(dict[str, type]):
    """name -> class, filled by `@registry.register(name)`; an unknown name names its config key."""

    def __init__(self, config_key: str, name_attr: str = "name"):
        super().__init__()
        self.config_key = config_key
        self.name_attr = name_attr

    def register(self, name: str) -> Callable[[type], type]:
        def add(cls: type) -> type:
            if name in self:
                raise ValueError(f"{self.config_key}: {name!r} registered twice ({self[name].__name__}, {cls.__name__})")
            setattr(cls, self.name_attr, name)
            self[name] = cls
            return cls

        return add

    def lookup(self, name: str) -> type:
        if name not in self:
            raise ValueError(f"{self.config_key}: unknown value {name!r}; expected one of {sorted(self)}")
        return self[name]
