"""docs/configuration.md says what the code does: its table of groups lists every option under conf/, its table of
rule owners names every module that declares rules (its commands run in tests/test_docs_commands.py)."""

import re
from pathlib import Path

from omiti2v.config_check import RULE_OWNERS, config_groups

REPO = Path(__file__).resolve().parents[1]
PAGE = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")


def table_rows(heading: str) -> dict[str, str]:
    """First cell (backticks stripped) -> second cell, of the table under `heading`."""
    section = PAGE.split(f"## {heading}", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1:3] for line in section.splitlines() if line.startswith("| `")]
    return {first.strip(): second.strip() for first, second in rows}


def test_the_groups_table_lists_every_option():
    rows = {name.strip("`"): cell for name, cell in table_rows("The groups").items()}
    assert set(rows) == set(config_groups()), "add or remove a row of docs/configuration.md's groups table"
    for group, options in config_groups().items():
        listed = {name for name in re.findall(r"`([^`]+)`", rows[group]) if "<" not in name}
        if "<name>-tiny" in rows[group]:
            assert all(o.removesuffix("-tiny") in listed for o in options if o.endswith("-tiny")), group
            options = [o for o in options if not o.endswith("-tiny")]
        assert listed == set(options), f"docs/configuration.md, group {group}: list {sorted(options)}"


def test_the_rule_owners_table_names_every_module():
    modules = {m for cell in table_rows("Adding a key or a group").values() for m in re.findall(r"`([\w/]+\.py)`", cell)}
    expected = {RULE_OWNERS.target(name).replace(".", "/") + ".py" for name in RULE_OWNERS} | {"omiti2v/config_check.py"}
    assert modules == expected
