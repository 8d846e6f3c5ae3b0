"""One registry kind for every name a config or the command line selects: lazy entries load on first lookup,
every entry is of the registry's kind, a name is taken once, an unknown name gets the closest ones, and
listing the names of the heavy registries imports neither torch nor diffusers."""

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from omiti2v.cli import COMMANDS
from omiti2v.config_check import RULE_OWNERS
from omiti2v.guidance import GUIDANCE_METHODS, KNOBS
from omiti2v.judge.families import JUDGES
from omiti2v.models import MODELS
from omiti2v.models.base import Baseline
from omiti2v.registry import Registry, UnknownNameError, lazy_exports
from omiti2v.scorers import FLOW_BACKENDS, SCORERS
from omiti2v.stages import STAGES

REPO = Path(__file__).resolve().parents[1]


class Base:
    pass


class Good(Base):
    pass


class Other:
    pass


def test_lazy_entry_loads_on_lookup_and_gets_its_name():
    reg = Registry("test.key", base=Base, name_attr="label")
    reg.declare("good", f"{__name__}:Good")
    assert "good" in reg and list(reg) == ["good"] and reg.target("good") == f"{__name__}:Good"
    assert reg.lookup("good") is Good and Good.label == "good"
    reg.register("in-place")(type("InPlace", (Base,), {}))
    assert reg.names() == ("in-place", "good") or set(reg.names()) == {"in-place", "good"}


def test_a_name_is_registered_once_and_entries_are_of_the_registry_kind():
    reg = Registry("test.key", base=Base)
    reg.declare("a", f"{__name__}:Good")
    with pytest.raises(ValueError, match="'a' registered twice"):
        reg.register("a")(Good)
    with pytest.raises(ValueError, match="'a' registered twice"):
        reg.declare("a", f"{__name__}:Other")
    with pytest.raises(TypeError, match="'wrong'.*is not a Base"):
        reg.register("wrong")(Other)
    reg.declare("late", f"{__name__}:Other")  # a lazy entry is checked when it loads
    with pytest.raises(TypeError, match="'late'.*is not a Base"):
        reg.lookup("late")
    functions = Registry("test.functions", base=Callable)
    with pytest.raises(TypeError):
        functions.register("not-callable")(42)


def test_unknown_name_names_the_key_and_the_closest_names():
    with pytest.raises(UnknownNameError) as err:
        MODELS.lookup("framepak")
    assert str(err.value) == "model.baseline: unknown value 'framepak'; did you mean framepack?"
    with pytest.raises(UnknownNameError, match="expected one of"):
        SCORERS.lookup("zzz")


def test_lazy_exports_load_a_name_from_its_submodule():
    getattr_ = lazy_exports("omiti2v.models", {".sizing": ("bucket_size",)})
    from omiti2v.models.sizing import bucket_size

    assert getattr_("bucket_size") is bucket_size
    with pytest.raises(AttributeError):
        getattr_("nothing")


@pytest.mark.parametrize(("registry", "base"), [(MODELS, Baseline), (STAGES, Callable), (COMMANDS, Callable)])
def test_every_declared_entry_loads_and_is_of_its_kind(registry, base):
    """A typo in a "module:attribute" target fails here, not in a user's run."""
    for name in registry:
        entry = registry[name]
        assert issubclass(entry, base) if isinstance(entry, type) else isinstance(entry, base), name
    if registry is MODELS:
        assert {MODELS[n].name for n in MODELS} == set(MODELS)


def test_scorer_and_flow_entries_load_with_their_names():
    assert {SCORERS[n].metric for n in SCORERS} == set(SCORERS) == {
        "dynamic_degree", "aesthetic_quality", "imaging_quality", "i2v_subject", "i2v_background", "copy_index"}
    assert {FLOW_BACKENDS[n].name for n in FLOW_BACKENDS} == {"raft", "opencv_dis"}
    assert {RULE_OWNERS[n].__name__ for n in RULE_OWNERS} >= {"omiti2v.judge.options", "omiti2v.models.settings"}
    assert len(JUDGES) >= 8 and all(JUDGES[n].name == n for n in JUDGES)
    assert set(GUIDANCE_METHODS) == set(KNOBS) and all(GUIDANCE_METHODS[n].name == n for n in GUIDANCE_METHODS)


def test_listing_names_and_rules_imports_no_heavy_library():
    """What the config check and `--help` need (the names of every registry, every rule table) imports none of
    them; what the preflight reads of a baseline (its settings and checkpoints) imports no diffusers or
    transformers (only building a pipeline does)."""
    code = ("import json, sys\n"
            "from omiti2v.models import MODELS\nfrom omiti2v.scorers import SCORERS, FLOW_BACKENDS\n"
            "from omiti2v.stages import STAGES\nfrom omiti2v.cli import COMMANDS\n"
            "from omiti2v.config_check import all_rules, known_keys\n"
            "from omiti2v.guidance import GUIDANCE_METHODS\n"
            "names = [list(r) for r in (MODELS, SCORERS, FLOW_BACKENDS, STAGES, COMMANDS, GUIDANCE_METHODS)]\n"
            "rules = sorted(all_rules()); known_keys()\n"
            "heavy = lambda: [m for m in ('torch', 'diffusers', 'transformers', 'scipy') if m in sys.modules]\n"
            "listing = heavy()\n"
            "from omiti2v.models import get_baseline\n"
            "for name in ('wan2.1', 'framepack', 'hunyuan-i2v', 'easyanimate', 'skyreels-v2-df'):\n"
            "    baseline = get_baseline(name); baseline.pretrained_ids(baseline.settings())\n"
            "print(json.dumps([listing, heavy()]))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.splitlines()[-1]) == [[], ["torch"]]
