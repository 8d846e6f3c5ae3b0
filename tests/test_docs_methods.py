"""Every shell command in docs/methods.md runs in the CI-safe form README commands run in (test_readme_commands)."""

from __future__ import annotations

import re
from pathlib import Path

from test_readme_commands import check_hydra, expand_make, kind_of, offline  # noqa: F401  (offline: a fixture)

DOC = Path(__file__).resolve().parents[1] / "docs" / "methods.md"


def doc_commands() -> list[str]:
    commands = []
    for block in re.findall(r"```(?:bash|sh|shell)\n(.*?)```", DOC.read_text(), flags=re.S):
        commands += [re.sub(r"\s+#\s.*$", "", line).strip() for line in block.splitlines() if line.strip()]
    return commands


def test_methods_doc_commands_run_in_ci_safe_form(offline, tmp_path):  # noqa: F811
    commands = doc_commands()
    assert len(commands) == 6
    for command in commands:
        kind = kind_of(command)
        assert kind in ("make_dry", "hydra"), command
        if kind == "make_dry":
            expand_make(command)
        else:
            check_hydra(command, tmp_path)
    assert "--model wan2.1-tiny" in " ".join(expand_make("make reproduce TABLE=methods MODEL=wan2.1-tiny"))
