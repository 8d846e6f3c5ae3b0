"""Parsing untrusted JSON and YAML (benchmark copies, submissions, leaderboard entries) with bounds.

JSON: nesting depth, integer digits and file size are limited; NaN/Infinity and duplicate keys are refused.
YAML: aliases and anchors are refused (no "billion laughs"), nesting depth and node count are limited,
duplicate keys and non-finite floats are refused. Every problem is one `ParseError` line naming the file.
(Writers pass allow_nan=False: the project never writes NaN/Infinity either.)
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from .errors import SetupError
from .paths import open_regular

MAX_DEPTH = 64
MAX_INT_DIGITS = 30
MAX_YAML_NODES = 10_000
MAX_JSON_BYTES = 64 << 20
MAX_YAML_BYTES = 64 << 10
SCAN_CHARS = 1 << 16  # characters the depth pre-check looks at per step
_OPENING, _CLOSING = np.frombuffer(b"[{", np.uint8), np.frombuffer(b"]}", np.uint8)


class ParseError(SetupError, ValueError):
    """A file is not valid (bounded, strict) JSON or YAML; the message is one line naming the file."""

    def __init__(self, source: str, problem: str):
        self.source, self.problem = source, problem
        super().__init__(f"{source}: {problem}")


def env_limit(name: str, default: int) -> int:
    """A size limit, raised (or lowered) with the environment variable `name`."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise SetupError(f"{name}={raw!r}: must be an integer") from None


def json_depth(text: str) -> int:
    """Deepest bracket nesting outside strings, scanned in chunks with a carried state (inside a string or not,
    how many backslashes ended the previous chunk): scratch memory stays a few MB whatever the size of the text
    or the length of its strings, and nothing recurses. The pre-check before the recursive parser.

    A backslash escapes the next character; outside a string that is not JSON, and the parser stops there, so
    the count is exact wherever the parser gets to."""
    deepest = depth = carried_backslashes = 0
    in_string = False
    for start in range(0, len(text), SCAN_CHARS):
        data = text[start:start + SCAN_CHARS].encode("utf-8", "surrogatepass")
        if not any(c in data for c in (b'"', b"\\", b"[", b"]", b"{", b"}")):
            carried_backslashes = 0  # plain text: nothing changes
            continue
        codes = np.frombuffer(data, dtype=np.uint8)
        position = np.arange(len(codes), dtype=np.int32)
        backslash = codes == ord("\\")
        # backslashes in the run ending at each position (0 elsewhere); a quote after an odd run is escaped
        run = position - np.maximum.accumulate(np.where(backslash, -1 - carried_backslashes, position))
        escaped = np.empty(len(codes), dtype=bool)
        escaped[0], escaped[1:] = carried_backslashes % 2, run[:-1] % 2
        quote = (codes == ord('"')) & ~escaped
        outside = (np.cumsum(quote, dtype=np.int32) + in_string) % 2 == 0
        steps = (np.isin(codes, _OPENING).astype(np.int32) - np.isin(codes, _CLOSING)) * outside
        levels = np.cumsum(steps) + depth
        deepest, depth = max(deepest, int(levels.max())), int(levels[-1])
        in_string, carried_backslashes = not outside[-1], int(run[-1])
    return deepest


def loads_json(text: str, source: str, max_depth: int = MAX_DEPTH, max_int_digits: int = MAX_INT_DIGITS) -> Any:
    """Strict, bounded JSON: depth, integer size, no NaN/Infinity, no duplicate keys."""
    if json_depth(text) > max_depth:
        raise ParseError(source, f"JSON nested deeper than {max_depth} levels")

    def parse_int(digits: str) -> int:
        if len(digits.lstrip("-")) > max_int_digits:
            raise ParseError(source, f"integer with {len(digits)} digits (at most {max_int_digits})")
        return int(digits)

    def parse_float(literal: str) -> float:
        value = float(literal)
        if not math.isfinite(value):
            raise ParseError(source, f"number {literal[:40]} is out of range")
        return value

    def parse_constant(name: str):
        raise ParseError(source, f"{name} is not JSON (only finite numbers are allowed)")

    def pairs(items: list[tuple[str, Any]]) -> dict:
        out: dict = {}
        for key, value in items:
            if key in out:
                raise ParseError(source, f"duplicate key {key[:80]!r}")
            out[key] = value
        return out

    try:
        return _encodable(json.loads(text, parse_int=parse_int, parse_float=parse_float,
                                     parse_constant=parse_constant, object_pairs_hook=pairs), source)
    except json.JSONDecodeError as exc:
        raise ParseError(source, f"not valid JSON: {exc}") from None
    except RecursionError:
        raise ParseError(source, f"JSON nested deeper than {max_depth} levels") from None


def _encodable(value: Any, source: str) -> Any:
    """`value` when every string in it (keys included) is valid Unicode (a lone surrogate can be neither written
    as UTF-8 nor used in a file name); depth is already bounded, so recursion is safe."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ParseError(source, f"string {value[:40]!r} holds a lone surrogate (\\ud800-\\udfff)") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _encodable(key, source)
            _encodable(item, source)
    elif isinstance(value, list):
        for item in value:
            _encodable(item, source)
    return value


def _read_text(path: Path, max_bytes: int, kind: str) -> str:
    """The file's text, read only when it is a regular file (a FIFO or a device is named, never read) within
    `max_bytes`."""
    try:
        with open_regular(path) as f:
            size = os.fstat(f.fileno()).st_size
            if size > max_bytes:
                raise ParseError(str(path), f"{size} bytes, larger than the {max_bytes} bytes allowed for {kind}")
            data = f.read(max_bytes + 1)
    except ParseError:
        raise
    except ValueError as exc:
        raise ParseError(str(path), str(exc)) from None
    except OSError as exc:
        raise ParseError(str(path), f"cannot be read ({exc.strerror or exc})") from None
    if len(data) > max_bytes:
        raise ParseError(str(path), f"larger than the {max_bytes} bytes allowed for {kind}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParseError(str(path), f"not UTF-8 text (byte {exc.start})") from None


def read_json(path: str | os.PathLike, max_bytes: int = MAX_JSON_BYTES, **limits) -> Any:
    path = Path(path)
    return loads_json(_read_text(path, max_bytes, "JSON"), str(path), **limits)


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader without aliases, with a depth and node budget, refusing duplicate keys and huge integers."""

    max_depth = MAX_DEPTH
    max_nodes = MAX_YAML_NODES

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            raise yaml.YAMLError(f"aliases ('*{self.peek_event().anchor}') are not allowed")
        event = self.peek_event()
        if getattr(event, "anchor", None) is not None:
            raise yaml.YAMLError(f"anchors ('&{event.anchor}') are not allowed")
        self._nodes += 1
        if self._nodes > self.max_nodes:
            raise yaml.YAMLError(f"more than {self.max_nodes} nodes")
        self._depth += 1
        try:
            if self._depth > self.max_depth:
                raise yaml.YAMLError(f"nested deeper than {self.max_depth} levels")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:
                raise yaml.YAMLError("a mapping key must be a plain value") from None
            if duplicate:
                raise yaml.YAMLError(f"duplicate key {str(key)[:80]!r}")
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int(self, node):
        digits = sum(c.isdigit() for c in str(node.value))
        if digits > MAX_INT_DIGITS:
            raise yaml.YAMLError(f"integer with {digits} digits (at most {MAX_INT_DIGITS})")
        return super().construct_yaml_int(node)

    def construct_yaml_float(self, node):
        value = super().construct_yaml_float(node)
        if not math.isfinite(value):
            raise yaml.YAMLError(f"non-finite number {node.value!r}")
        return value


_BoundedLoader.add_constructor("tag:yaml.org,2002:int", _BoundedLoader.construct_yaml_int)
_BoundedLoader.add_constructor("tag:yaml.org,2002:float", _BoundedLoader.construct_yaml_float)


def loads_yaml(text: str, source: str) -> Any:
    """One bounded YAML document (see `_BoundedLoader`)."""
    try:
        return yaml.load(text, Loader=_BoundedLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ParseError(source, f"not accepted YAML{where}: {' '.join(str(problem).split())}") from None
    except (RecursionError, ValueError, OverflowError) as exc:
        raise ParseError(source, f"not accepted YAML: {type(exc).__name__}") from None


def read_yaml(path: str | os.PathLike, max_bytes: int = MAX_YAML_BYTES) -> Any:
    path = Path(path)
    return loads_yaml(_read_text(path, max_bytes, "YAML"), str(path))
