"""Every paper fact and shared enum is written in one place (its home) that the rest of the package reads.

The scan reads values, not prose: YAML leaves (conf/**, omiti2v/**/*.yaml) and Python constants (omiti2v/**,
runners/**) bound to a name (assignment, keyword, dict key, default) or anywhere for literals distinctive
enough (a hub id, 31337, 151200). Comments and docstrings may explain a fact; a second value would be a second
source that can drift, so it fails here. `test_the_scan_finds_a_planted_duplicate` shows each fact is caught.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SCANNED = (("conf", "*.yaml"), ("omiti2v", "*.yaml"), ("omiti2v", "*.py"), ("runners", "*.py"))


@dataclass(frozen=True)
class Value:
    """A value written in a file: `name` is what it is bound to (a YAML key, a variable, keyword, dict key or
    argument; None for a bare literal)."""

    name: str | None
    value: object


def yaml_values(text: str) -> Iterator[Value]:
    def walk(node, name=None):
        if isinstance(node, dict):
            for key, child in node.items():
                yield from walk(child, str(key))
        elif isinstance(node, list):
            if node and all(isinstance(v, str) for v in node):
                yield Value(name, frozenset(node))
            for child in node:
                yield from walk(child, name)
        else:
            yield Value(name, node)

    yield from walk(yaml.safe_load(text))


def _constant(node: ast.AST):
    """A literal's value: constants, products of constants (360 * 420), tuples/lists/sets of strings."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
        left, right = _constant(node.left), _constant(node.right)
        if isinstance(left, int | float) and isinstance(right, int | float):
            return left * right
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        items = [_constant(e) for e in node.elts]
        if items and all(isinstance(i, str) for i in items):
            return frozenset(items)
    return None


def python_values(text: str) -> Iterator[Value]:
    tree = ast.parse(text)
    docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                  if isinstance(n, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
                  and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    for node in ast.walk(tree):
        bound: list[tuple[str, ast.AST]] = []
        if isinstance(node, ast.Assign):
            bound = [(t.id if isinstance(t, ast.Name) else getattr(t, "attr", ""), node.value) for t in node.targets]
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            bound = [(getattr(node.target, "id", getattr(node.target, "attr", "")), node.value)]
        elif isinstance(node, ast.keyword) and node.arg:
            bound = [(node.arg, node.value)]
        elif isinstance(node, ast.Dict):
            bound = [(k.value, v) for k, v in zip(node.keys, node.values, strict=True)
                     if isinstance(k, ast.Constant) and isinstance(k.value, str)]
            if bound and len(bound) == len(node.keys):  # a map's keys are an enum too
                yield Value(None, frozenset(name for name, _ in bound))
        elif isinstance(node, ast.arguments):
            args = node.posonlyargs + node.args
            bound = list(zip([a.arg for a in args[len(args) - len(node.defaults):]], node.defaults, strict=True))
            bound += [(a.arg, d) for a, d in zip(node.kwonlyargs, node.kw_defaults, strict=True) if d is not None]
        for name, value in bound:
            if (literal := _constant(value)) is not None:
                yield Value(name, literal)
        if isinstance(node, ast.Constant) and id(node) not in docstrings:
            yield Value(None, node.value)


def values_of(path: Path) -> Iterator[Value]:
    text = path.read_text(encoding="utf-8")
    return python_values(text) if path.suffix == ".py" else yaml_values(text)


def scanned_files(root: Path = REPO) -> list[Path]:
    return sorted(p for folder, pattern in SCANNED for p in (root / folder).rglob(pattern))


def named(pattern: str, value) -> Callable[[Value], bool]:
    """`value` bound to a name matching `pattern` (case-insensitive)."""
    return lambda v: v.name is not None and re.search(pattern, v.name, re.I) is not None and _equal(v.value, value)


def literal(value) -> Callable[[Value], bool]:
    """`value` anywhere, or inside a string (a hub id in a message)."""
    return lambda v: _equal(v.value, value) or (isinstance(value, str) and isinstance(v.value, str) and value in v.value)


def holding(*items: str) -> Callable[[Value], bool]:
    """A collection of strings with all of `items` (an enum written out again)."""
    return lambda v: isinstance(v.value, frozenset) and set(items) <= v.value


def _equal(a, b) -> bool:
    return type(a) is not bool and type(b) is not bool and type(a) in (int, float, str) and a == b


def _home_value(group: str, name: str, *keys: str):
    node = yaml.safe_load((REPO / "conf" / group / f"{name}.yaml").read_text())
    for key in keys:
        node = node[key]
    return node


def _schema_version(name: str) -> str:
    import json

    schema = json.loads((REPO / "omiti2v" / "schemas" / f"{name}.schema.json").read_text())
    return schema["properties"]["schema_version"]["enum"][-1]


PAPER_JUDGE = "conf/judge/qwen2.5-vl-32b.yaml"
FRAMEPACK = "conf/model/framepack.yaml"
COSTS = "omiti2v/generate/published_costs.yaml"
JUDGE_CODE = ("conf/judge/", "conf/profile/", "omiti2v/judge/", "omiti2v/profile.py", "omiti2v/paper_settings.py")
# fact -> (its home, how a copy of it looks[, the files where such a value means this fact: a model's fps of 8 is
# not the judge's]). The values come from the homes, so a changed fact is still found.
FACTS: dict[str, tuple] = {
    "paper judge checkpoint": ({PAPER_JUDGE}, literal(_home_value("judge", "qwen2.5-vl-32b", "model"))),
    "paper judge max_pixels": ({PAPER_JUDGE}, literal(_home_value("judge", "qwen2.5-vl-32b", "max_pixels"))),
    "paper judge fps": ({PAPER_JUDGE}, named(r"^(paper_)?fps$", _home_value("judge", "qwen2.5-vl-32b", "fps")),
                        JUDGE_CODE),
    "paper judge max_new_tokens": ({PAPER_JUDGE}, named("max_new_tokens",
                                                        _home_value("judge", "qwen2.5-vl-32b", "max_new_tokens"))),
    "paper metadata fps": ({"conf/profile/paper.yaml"},
                           named("metadata_fps", _home_value("profile", "paper", "judge", "metadata_fps"))),
    "FramePack seed": ({FRAMEPACK}, literal(_home_value("model", "framepack", "seed"))),
    "FramePack TeaCache threshold": ({FRAMEPACK}, named("rel_l1|teacache",
                                                        _home_value("model", "framepack", "teacache", "rel_l1_thresh"))),
    "FramePack steps": ({FRAMEPACK}, named("num_inference_steps|num_steps",
                                           _home_value("model", "framepack", "sampling", "num_inference_steps"))),
    "Wan official flow shift": ({"conf/model/wan2.1.yaml"}, named("wan_shift", 3.0)),
    "leaderboard entry schema version": (set(), named("schema_version", _schema_version("leaderboard_entry"))),
    "summary schema version": (set(), named("schema_version", _schema_version("summary"))),
    "replicates schema version": (set(), named("schema_version", _schema_version("replicates"))),
    "dtype names": ({"omiti2v/dtypes.py"}, holding("float32", "bfloat16", "float16")),
    "ASM sites": ({"omiti2v/asm/config.py"}, holding("self", "cross_image", "cross_text", "dual", "single", "joint")),
    "judge modes": ({"omiti2v/judge/options.py"}, holding("official", "parity", "fast")),
    "measured Wan2.1 forward": ({COSTS}, named("seconds_per_forward|s_per_step|sec", 3.39)),
    "measured FramePack forward": ({COSTS}, named("seconds_per_forward|s_per_step|sec", 1.17)),
    "measured Wan float32 peak": ({COSTS}, literal("70.4 GB")),
    "measured Wan float32 peak (number)": ({COSTS}, named("peak", 70.4)),
}


def homes_of(matches: Callable[[Value], bool], root: Path = REPO, scope: tuple[str, ...] = ("",)) -> set[str]:
    """The files (relative to `root`, under one of `scope`) that write a value `matches` accepts."""
    paths = [(str(p.relative_to(root)), p) for p in scanned_files(root)]
    return {rel for rel, p in paths if rel.startswith(scope) and any(matches(v) for v in values_of(p))}


@pytest.fixture(scope="module")
def scanned() -> dict[str, list[Value]]:
    return {str(p.relative_to(REPO)): list(values_of(p)) for p in scanned_files()}


@pytest.mark.parametrize("fact", FACTS)
def test_each_fact_is_written_in_its_home_only(fact, scanned):
    home, matches, *scope = FACTS[fact]
    found = {path for path, values in scanned.items()
             if path.startswith(tuple(scope[0]) if scope else "") and any(matches(v) for v in values)}
    assert found <= home, f"{fact}: written in {sorted(found - home)}; its home: {sorted(home) or 'the JSON schema'}"


def test_the_scan_finds_a_planted_duplicate(tmp_path):
    """A copy of each fact, written the ways code and configs write them, is found (so the test above can fail)."""
    (tmp_path / "conf" / "judge").mkdir(parents=True)
    (tmp_path / "omiti2v").mkdir()
    (tmp_path / "runners").mkdir()
    (tmp_path / "conf" / "judge" / "copy.yaml").write_text(
        "model: Qwen/Qwen2.5-VL-32B-Instruct\nfps: 8\nmax_new_tokens: 128\nmetadata_fps: 2.0\n"
        "sampling: {num_inference_steps: 25}\nteacache: {rel_l1_thresh: 0.15}\nsites: [self, cross_image, cross_text, "
        "dual, single, joint]\nseconds_per_forward: 3.39\n")
    (tmp_path / "omiti2v" / "copy.py").write_text(
        '"""FramePack seed 31337 in a docstring is prose, not a copy."""\n'
        "PAPER_MAX_PIXELS = 360 * 420\nSEED = 31337\nWAN_SHIFT = 3.0\n"
        "def load(max_new_tokens=128, fps=8.0): ...\n"
        "ENTRY = {'schema_version': '1.1', 'seconds_per_forward': 1.17}\nPEAK = '70.4 GB'\nwan_peak_gb = 70.4\n"
        "MODES = ('official', 'parity', 'fast', 'both')\nDTYPES = {'float32': 1, 'bfloat16': 2, 'float16': 3}\n"
        "CONFIG = dict(rel_l1_thresh=0.15, num_steps=25)\nSUMMARY_VERSION = {'schema_version': '1.3', 'n': '1.0'}\n")
    (tmp_path / "runners" / "prose.py").write_text('"""31337, 151200 and Qwen/Qwen2.5-VL-32B-Instruct in prose."""\n'
                                                  "# fps = 8\n")
    for fact, (_, matches, *scope) in FACTS.items():
        found = homes_of(matches, tmp_path, *scope)
        if fact == "replicates schema version":  # "1.0" bound to an unrelated key above: not a schema version
            assert found == set(), fact
        else:
            assert found and "runners/prose.py" not in found, fact
