"""docs/official-procedure.md's deviation table is what omiti2v/profile.py writes into summary.json: for the
paper-profile config of every model (on a GPU), the same sentences for the same models, and nothing more."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

from hydra import compose, initialize_config_dir

from omiti2v.profile import deviations

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "official-procedure.md"
MODELS = sorted(p.stem for p in (REPO / "conf" / "model").glob("*.yaml") if not p.stem.endswith("-tiny"))


def documented() -> dict[str, set[str]]:
    """sentence -> the model configs the table lists it for ('every model' expanded)."""
    table = re.search(r"<!-- deviations:start -->\n(.*?)<!-- deviations:end -->", DOC.read_text(), flags=re.S)
    assert table, f"{DOC}: no <!-- deviations:start --> ... <!-- deviations:end --> table"
    rows = {}
    for line in table.group(1).splitlines()[2:]:  # header and separator
        sentence, models, _why = (cell.strip() for cell in line.strip().strip("|").split(" | "))
        rows[sentence] = set(MODELS) if models == "every model" else {m.strip() for m in models.split(",")}
    return rows


def produced() -> dict[str, set[str]]:
    rows = defaultdict(set)
    for model in MODELS:
        with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
            cfg = compose("config", overrides=[f"model={model}", "device=cuda"])
        for sentence in deviations(cfg):
            rows[sentence].add(model)
    return dict(rows)


def test_the_deviation_table_is_what_the_profile_writes():
    doc, code = documented(), produced()
    missing = {s: sorted(m) for s, m in code.items() if s not in doc}
    stale = sorted(s for s in doc if s not in code)
    assert not missing and not stale, f"docs/official-procedure.md is out of date; add rows {missing}, drop {stale}"
    for sentence, models in code.items():
        assert doc[sentence] == models, f"{sentence!r}: the table says {sorted(doc[sentence])}, the profile {sorted(models)}"


def test_the_readme_points_to_the_page():
    assert "docs/official-procedure.md" in (REPO / "README.md").read_text()
