"""What a config value must be, declared next to the code that reads it.

A rule is `rule(key, value) -> problem line | None`. A module that reads a config group declares its rules as
`CONFIG_RULES = {"group.key": rule, ...}` (and, for rules between several keys or with the file system,
`config_problems(cfg) -> Iterable[str]`); `omiti2v.config_check` collects them (its `RULE_OWNERS` registry) and
checks the composed config before anything loads. Declaring a rule also makes its key known to the check of
unknown keys, for keys the code reads with a default that no shipped yaml sets. The same rules serve the code
itself (`group_problems`), so each enum and range is written once.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from .registry import closest

Rule = Callable[[str, Any], "str | None"]
MISSING = object()  # an absent key (rules are not asked about it)


def is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _hint(value, choices) -> str:
    near = closest(str(value), choices) if isinstance(value, str) else []
    return f" (did you mean {' or '.join(near)}?)" if near else ""


def one_of(*choices: str) -> Rule:
    def check(key, value):
        if value not in choices:
            return f"{key} {value!r} is not one of {'|'.join(choices)}{_hint(value, choices)}"
    return check


def number(gt: float | None = None, ge: float | None = None, le: float | None = None, nullable: bool = False,
           integer: bool = False, also: tuple[str, ...] = ()) -> Rule:
    """A finite number (an integer with `integer`) within the bounds; null with `nullable`; or one of `also`."""
    kind = "an integer" if integer else "a number"
    bounds = " and ".join(filter(None, [f"> {gt}" if gt is not None else f">= {ge}" if ge is not None else "",
                                        f"<= {le}" if le is not None else ""]))
    wanted = "".join(f"{word!r} or " for word in also) + f"{kind}{' ' + bounds if bounds else ''}" \
        + (" or null" if nullable else "")

    def check(key, value):
        if (value is None and nullable) or value in also:
            return None
        if not is_number(value) or (integer and not isinstance(value, int)):
            return f"{key} {value!r} is not {wanted}"
        if (gt is not None and value <= gt) or (ge is not None and value < ge) or (le is not None and value > le):
            return f"{key} {value!r} must be {wanted}"
    return check


def subset_of(*choices: str) -> Rule:
    def check(key, value):
        if value is None:
            return None
        if not isinstance(value, list):
            return f"{key} {value!r} is not a list (e.g. {key}=[{choices[0]}])"
        unknown = [v for v in value if v not in choices]
        if unknown:
            return (f"{key}: {', '.join(map(repr, unknown))} not in {'|'.join(choices)}"
                    + "".join(_hint(v, choices) for v in unknown))
    return check


def matches(pattern: str, wanted: str) -> Rule:
    """A string matching `pattern` in full; `wanted` says in words what that is."""
    compiled = re.compile(pattern)

    def check(key, value):
        if not isinstance(value, str) or not compiled.fullmatch(value):
            return f"{key} {value!r} is not {wanted}"
    return check


def flag(key, value):
    if not isinstance(value, bool):
        return f"{key} {value!r} is not true or false"


def lookup(values: Mapping, dotted: str):
    """The value at `dotted` in nested mappings, MISSING when a part is absent."""
    node: Any = values
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return MISSING
        node = node[part]
    return node


def group_problems(rules: Mapping[str, Rule], group: str, values: Mapping) -> list[str]:
    """Problems of one group's plain `values` (e.g. a baseline's model settings) under the `group.*` rules."""
    problems = []
    for key, rule in rules.items():
        head, _, rest = key.partition(".")
        if head == group and rest:
            value = lookup(values, rest)
            if value is not MISSING:
                problems += filter(None, [rule(key, value)])
    return problems
