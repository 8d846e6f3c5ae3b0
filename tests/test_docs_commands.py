"""The README and docs/ stay true: every shell command of their code blocks runs in a CI-safe form (the kinds of
test_readme_commands), the Python examples of docs/library-api.md run as written, every page is reachable from
the README, every relative link resolves, no code block hides a command in an untagged fence, and no page cites
a document that is not in the repository."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from test_readme_commands import kind_of, offline, page_commands, run_command  # noqa: F401  (offline: a fixture)

REPO = Path(__file__).resolve().parents[1]
DOCS = sorted((REPO / "docs").glob("*.md"))
PAGES = [REPO / "README.md", *DOCS]
ENV_PREFIX = re.compile(r"^(?:[A-Z_][A-Z0-9_]*=\S*\s+)+")


def ci_form(command: str) -> str:
    """The command the test runs: leading VAR=value assignments (the offline fixture sets what they set, or they
    pick a GPU) and a trailing `&` dropped."""
    return ENV_PREFIX.sub("", command).removesuffix("&").strip()


def all_commands() -> list[tuple[str, str]]:
    """(page, command) of every documented command, each command once."""
    seen, out = set(), []
    for page in PAGES:
        for command in page_commands(page):
            if ci_form(command) not in seen:
                seen.add(ci_form(command))
                out.append((str(page.relative_to(REPO)), command))
    return out


def fences(page: Path) -> list[str]:
    """The info string of every opening code fence of a page."""
    infos, inside = [], False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            if not inside:
                infos.append(line[3:].strip())
            inside = not inside
    return infos


def test_every_documented_command_has_a_kind():
    commands = all_commands()
    assert len(commands) >= 60, "the docs' commands are collected (bash, sh, shell and console blocks)"
    assert any(page == "README.md" for page, _ in commands)
    for page, command in commands:
        assert kind_of(ci_form(command)), f"{page}: {command}"


def test_every_documented_command_runs_in_ci_safe_form(offline, tmp_path, capsys):  # noqa: F811
    for page, command in all_commands():
        try:
            run_command(ci_form(command), tmp_path, capsys)
        except AssertionError as exc:
            raise AssertionError(f"{page}: {command}\n{exc}") from exc
    results = Path(os.environ["OMITI2V_RESULTS"])
    assert (results / "leaderboard" / "index.html").is_file()  # `omiti2v leaderboard` honoured OMITI2V_RESULTS


def test_no_command_hides_in_an_untagged_block():
    """An untagged fence would escape the command test: every block names its language (`text` for output, GPU
    commands and layouts)."""
    untagged = [str(page.relative_to(REPO)) for page in PAGES for info in fences(page) if not info]
    assert untagged == []


def test_python_blocks_parse():
    for page in PAGES:
        for block in re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), flags=re.S):
            ast.parse(block, filename=str(page))


@pytest.mark.slow
def test_library_api_examples_run_as_written(tmp_path):
    """docs/library-api.md's blocks, one after another in a fresh interpreter, from an empty folder."""
    blocks = re.findall(r"```python\n(.*?)```", (REPO / "docs" / "library-api.md").read_text(encoding="utf-8"), flags=re.S)
    assert len(blocks) == 3
    script = tmp_path / "examples.py"
    script.write_text("\n\n".join(blocks))
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=600,
                          env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]


def relative_links(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    return [t for t in targets if not re.match(r"[a-z]+:", t) and not t.startswith("#")]


def test_every_docs_page_is_linked_from_the_readme():
    linked = {target.split("#")[0] for target in relative_links(REPO / "README.md")}
    missing = [f"docs/{page.name}" for page in DOCS if f"docs/{page.name}" not in linked]
    assert missing == [], "link these pages from README.md's 'Where to go next'"


def test_every_relative_link_resolves():
    broken = [f"{page.relative_to(REPO)}: {target}" for page in PAGES for target in relative_links(page)
              if not (page.parent / target.split("#")[0]).exists()]
    assert broken == []


def repository_files() -> list[str]:
    """Every file git tracks, or would track (not ignored), relative to the repository."""
    return subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                          capture_output=True, text=True, check=True).stdout.split()


def repository_text_files() -> list[Path]:
    """Every file of the repository that is text: code, configs, docs, tests."""
    listed = repository_files()
    suffixes = {".py", ".md", ".yaml", ".yml", ".toml", ".json", ".txt", ".html", ".cfg", ".sh", ""}
    return [REPO / name for name in listed if Path(name).suffix in suffixes and (REPO / name).is_file()]


def test_no_video_or_weights_file_is_in_the_repository():
    """Fixtures are built in code and real videos read from the shared folder; nothing a run or an example
    writes (videos, checkpoints) is committed."""
    media = {".mp4", ".avi", ".mov", ".webm", ".mkv", ".gif", ".safetensors", ".bin", ".pt", ".pth", ".ckpt"}
    assert [name for name in repository_files() if Path(name).suffix.lower() in media] == []


def test_no_file_cites_a_document_outside_the_repository():
    """Facts are written with their public sources; the maintainers' private notes are not cited, anywhere."""
    private = re.compile("REFER" + r"ENCE(?: ?§ ?\d*|\.md)")
    cited = [f"{path.relative_to(REPO)}: {m}" for path in repository_text_files()
             for m in private.findall(path.read_text(encoding="utf-8", errors="replace"))]
    assert len(repository_text_files()) > 300 and cited == []


def test_measured_figures_live_on_the_performance_page():
    """Seconds per step/video/question/forward and GPU-hours are stated once, in docs/performance.md."""
    figure = re.compile(r"\b\d+(?:\.\d+)? ?(?:s/(?:step|video|question|forward)|GPU-h(?:ours)?)\b")
    elsewhere = [f"{page.relative_to(REPO)}: {m}" for page in PAGES if page.name != "performance.md"
                 for m in figure.findall(page.read_text(encoding="utf-8"))]
    assert elsewhere == []
