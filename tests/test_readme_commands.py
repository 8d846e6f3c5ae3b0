"""How a documented shell command runs in a CI-safe form (tests/test_docs_commands.py runs every command of the
README and docs/ through these), and the README's own checks.

Commands are classified by prefix in COMMANDS (first match wins); a documented command matching no prefix fails
the test, so a new command needs an entry. How each kind runs (no GPU, offline, in a temporary results root):
  make_dry     `make -n` only: the target exists and expands (`make test` would recurse; `make tables` is run
               for real by test_report_tables, the smoke chain `make eval` expands to by test_eval_smoke)
  make_install `make -n install` into a fresh venv path: the TORCH_SPEC given is what pip installs
  benchmark    a `--tiny` form must be one tests/test_benchmarks.py runs; any other form runs for real
  hydra        the runner's config is composed from the command's overrides (a sweep: its first point) and
               validated; with HF offline and an empty cache the preflight must pass for `-tiny` models and
               stop with a SetupError (exit 2 in the runner) for real ones
  plan_no_gpu  a real-size `make plan` without a GPU must end in one SetupError line before building
  cli          `omiti2v <sub> ...` is parsed by the real parser (every option exists), not run
  cli_run      run in-process, with README paths mapped to test paths (PATHS)
Duplicated commands run once. To add a command to a page: if its prefix is not below, add a (prefix, kind) row;
prefixes are tried in order, so put a specific one before a general one.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from hydra import compose, initialize_config_dir

from omiti2v.cli import build_parser, main
from omiti2v.config_check import SMOKE_CONFIG, tiny_models_only, validate_config
from omiti2v.data.benchmark import MINI_ROOT
from omiti2v.errors import SetupError
from omiti2v.leaderboard.validate import metadata_problems
from omiti2v.preflight import preflight

REPO = Path(__file__).resolve().parents[1]
VENV = Path(sys.executable).parents[1]
RUNNER_STAGES = {"eval": ["generate", "judge", "score", "summary"], "generate": ["generate"], "judge": ["judge"],
                 "score": ["score"], "summary": ["summary"]}

COMMANDS: list[tuple[str, str]] = [
    ("make install", "make_install"),
    ("make test", "make_dry"),
    ("make lint", "make_dry"),
    ("make eval", "hydra"),
    ("make generate", "hydra"), ("make judge", "hydra"), ("make score", "hydra"), ("make summary", "hydra"),
    ("make plan", "plan_no_gpu"),
    ("make tables", "make_dry"),
    ("make reproduce", "make_dry"),
    ("torchrun --nproc-per-node ", "torchrun"),
    (".venv/bin/python runners/", "hydra"),
    (".venv/bin/python benchmarks/", "benchmark"),
    (".venv/bin/omiti2v validate-data", "cli_run"),
    (".venv/bin/omiti2v leaderboard --from-datasets", "cli"),  # its exports come from `export`, parsed only
    (".venv/bin/omiti2v leaderboard", "cli_run"),
    (".venv/bin/omiti2v submit my_submission", "cli_run"),
    (".venv/bin/omiti2v ", "cli"),
]
# README placeholders -> what the test uses instead
PATHS = {"/data/OmitI2V": str(MINI_ROOT)}


def page_commands(page: Path) -> list[str]:
    """Command lines of a page's bash/sh/shell blocks and the `$ ` lines of its console blocks, comments stripped,
    in order, without duplicates."""
    text = page.read_text(encoding="utf-8")
    lines = [line for block in re.findall(r"```(?:bash|sh|shell)\n(.*?)```", text, flags=re.S)
             for line in block.splitlines()]
    lines += [line.strip()[2:] for block in re.findall(r"```console\n(.*?)```", text, flags=re.S)
              for line in block.splitlines() if line.strip().startswith("$ ")]
    commands: list[str] = []
    for line in lines:
        line = re.sub(r"\s+#\s.*$", "", line).strip()
        if line and not line.startswith("#") and line not in commands:
            commands.append(line)
    return commands


def kind_of(command: str) -> str:
    for prefix, kind in COMMANDS:
        if command.startswith(prefix):
            return kind
    raise AssertionError(f"documented command without an entry in COMMANDS (tests/test_readme_commands.py): {command}")


def expand_make(command: str) -> list[str]:
    """The runner command line `make` would execute (dry run)."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}  # under `make test`
    proc = subprocess.run([*shlex.split(command), "-n", "--no-print-directory", f"VENV={VENV}", "STAMP="], cwd=REPO,
                          capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 0, f"{command}: {proc.stderr}"
    return shlex.split(proc.stdout.strip().splitlines()[-1])


def first_point(overrides: list[str]) -> list[str]:
    """A sweep's first point: the first value of every comma list outside brackets; launcher choices dropped."""
    out = []
    for o in overrides:
        if o.startswith("hydra/launcher="):
            assert (REPO / "conf" / "hydra" / "launcher" / f"{o.split('=', 1)[1]}.yaml").is_file(), o
            continue
        key, _, value = o.partition("=")
        out.append(f"{key}={value.split(',')[0]}" if "," in value and not value.startswith("[") else o)
    return out


def composed(argv: list[str]):
    """(config, runner name) of `python runners/<name>.py [--config-name X] [-m] overrides...`."""
    runner = Path(argv[1]).stem
    args = [a for a in argv[2:] if a != "-m"]
    config = "config"
    if "--config-name" in args:
        i = args.index("--config-name")
        config, args = args[i + 1], args[:i] + args[i + 2:]
    elif tiny_models_only(args):  # the runners' rule (omiti2v.eval.checked_command_line)
        config = SMOKE_CONFIG
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose(config, overrides=first_point(args)), runner


@pytest.fixture
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))
    monkeypatch.setenv("OMITI2V_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("OMITI2V_WEIGHTS", str(tmp_path / "no-weights"))
    monkeypatch.delenv("OMITI2V_DATA", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.chdir(tmp_path)  # README paths such as results/rebuilt land in the temporary folder


def check_hydra(command: str, tmp_path: Path) -> None:
    argv = expand_make(command) if command.startswith("make ") else [sys.executable, *shlex.split(command)[1:]]
    cfg, runner = composed(argv)
    tiny = str(cfg.model.name).endswith("-tiny")
    try:
        validate_config(cfg)
        cfg.scorer.allow_download = False  # the sandbox is offline even when the hub switch says nothing
        preflight(cfg, RUNNER_STAGES[runner], tmp_path / "run")
    except SetupError as exc:
        assert not tiny, f"{command}: a -tiny run must pass its checks offline, got: {exc}"
        return
    assert tiny, f"{command}: a real-model run offline must stop in the checks (exit 2)"


def check_plan(command: str) -> None:
    from omiti2v.generate.planner import plan_config

    cfg, _ = composed(expand_make(command))
    validate_config(cfg)
    with pytest.raises(SetupError, match="needs a CUDA GPU") as err:
        plan_config(cfg)
    assert "\n" not in str(err.value)
    pages = re.findall(r"docs/[\w-]+\.md", str(err.value))
    assert pages and all((REPO / page).is_file() for page in pages), "the message points to a page that exists"


def check_cli_run(command: str, tmp_path: Path, capsys) -> None:
    argv = [PATHS.get(a, a) for a in shlex.split(command)[1:]]
    if argv[0] == "submit":  # the smoke-submission recipe on hand-made 5-frame 64x32 videos, validated only
        folder = tmp_path / argv[1]
        make_smoke_like_videos(folder)
        argv.append("--validate-only")
        argv[1] = str(folder)
    assert main(argv) == 0, f"{command}: {capsys.readouterr()}"


def make_smoke_like_videos(folder: Path) -> None:
    """What the smoke run writes (5 frames, 64x32, 16 fps, one per mini sample) plus the docs' submission.yaml."""
    import numpy as np

    from omiti2v.video import write_video

    folder.mkdir(parents=True)
    for sample_id in (p["id"] for p in yaml.safe_load((MINI_ROOT / "meta.json").read_text())):
        write_video(folder / f"{sample_id}.mp4", np.zeros((5, 32, 64, 3), dtype=np.uint8), 16)
    (folder / "submission.yaml").write_text(submission_yaml())


def submission_yaml() -> str:
    """The example submission.yaml of docs/leaderboard.md (its one yaml block)."""
    blocks = re.findall(r"```yaml\n(.*?)```", (REPO / "docs" / "leaderboard.md").read_text(encoding="utf-8"), flags=re.S)
    assert len(blocks) == 1, "docs/leaderboard.md: expected one yaml block, the example submission.yaml"
    return blocks[0]


def check_make_install(command: str, tmp_path: Path) -> None:
    """`make install TORCH_SPEC=...` into a fresh venv path installs exactly that torch spec, before the package."""
    assignments = dict(a.split("=", 1) for a in shlex.split(command)[2:])
    venv = tmp_path / "fresh-venv"
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    proc = subprocess.run(["make", "-n", "--no-print-directory", "install", f"VENV={venv}", f"STAMP={venv}/.installed",
                           *(f"{k}={v}" for k, v in assignments.items())], cwd=REPO, capture_output=True, text=True,
                          timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    installs = [line for line in proc.stdout.splitlines() if " -m pip install -q " in line and "--upgrade pip" not in line]
    assert installs[0].endswith(f"pip install -q {assignments['TORCH_SPEC']}"), proc.stdout
    assert installs[1].endswith("pip install -q -e '.[dev]'"), proc.stdout


def check_benchmark(command: str, tmp_path: Path) -> None:
    """A `--tiny` form is one that tests/test_benchmarks.py runs (and checks); any other form runs here."""
    from test_benchmarks import EXPECTED_OUTPUT

    script, *args = shlex.split(command)[1:]
    if "--tiny" in args:
        name = " ".join([Path(script).stem, *(a for a in args if a != "--tiny")])
        assert name in EXPECTED_OUTPUT, f"{command}: not a --tiny form tests/test_benchmarks.py runs"
        return
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, str(REPO / script), *args], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300, env=env)
    assert proc.returncode == 0, f"{command}: {proc.stderr[-2000:]}"


def run_command(command: str, tmp_path: Path, capsys) -> None:
    """Run one documented command in its CI-safe form (module docstring)."""
    kind = kind_of(command)
    if kind == "make_dry":
        expand_make(command)
    elif kind == "make_install":
        check_make_install(command, tmp_path)
    elif kind == "hydra":
        check_hydra(command, tmp_path)
    elif kind == "torchrun":  # the runner line torchrun starts on each rank
        check_hydra(".venv/bin/python " + shlex.join(shlex.split(command)[3:]), tmp_path)
    elif kind == "plan_no_gpu":
        check_plan(command)
    elif kind == "benchmark":
        check_benchmark(command, tmp_path)
    elif kind == "cli" and "--help" in command.split():
        with pytest.raises(SystemExit) as done:
            build_parser().parse_args(shlex.split(command)[1:])
        assert done.value.code == 0, command
    elif kind == "cli":
        args = build_parser().parse_args(shlex.split(command)[1:])
        assert callable(args.func)
    else:
        check_cli_run(command, tmp_path, capsys)


def test_example_submission_yaml_is_valid(tmp_path):
    path = tmp_path / "submission.yaml"
    path.write_text(submission_yaml())
    meta, problems = metadata_problems(path)
    assert problems == [] and meta["model"] == "my-i2v-model"


def test_make_targets_keep_the_smoke_config_for_tiny_models(monkeypatch, tmp_path):
    from omiti2v.eval import checked_command_line

    monkeypatch.setenv("OMITI2V_RESULTS", str(tmp_path))
    assert expand_make("make eval")[1:] == ["runners/eval.py", "--config-name", "smoke"]
    # the runner itself picks the smoke config for -tiny models, so make and `python runners/eval.py` agree
    assert expand_make("make eval MODEL=framepack-tiny")[1:] == ["runners/eval.py", "model=framepack-tiny"]
    assert checked_command_line(["model=framepack-tiny"]) == ["--config-name", "smoke", "model=framepack-tiny"]
    assert expand_make("make eval MODEL=framepack")[1:] == ["runners/eval.py", "model=framepack"]
    assert expand_make("make plan MODEL=wan2.1,framepack-tiny")[1:] == ["runners/plan.py", "-m", "model=wan2.1,framepack-tiny"]
    assert expand_make("make tables")[1:] == ["plots", "--runs", f"{tmp_path}/runs", "--out", f"{tmp_path}/plots"]


def test_download_commands_are_todays_hf_cli():
    """huggingface_hub 2.x ships `hf`; `huggingface-cli ...` commands in docs or messages no longer exist."""
    pages = [REPO / "README.md", *(REPO / "docs").glob("*.md")]
    texts = {p: p.read_text() for p in [*pages, *(REPO / "omiti2v").rglob("*.py")]}
    stale = [f"{p.relative_to(REPO)}: {m}" for p, t in texts.items() for m in re.findall(r"huggingface-cli \w+", t)]
    assert stale == []
    assert "hf download AIPeanutman/OmitI2V --repo-type dataset --local-dir /data/OmitI2V" in texts[REPO / "docs" / "models.md"]


def test_outputs_of_documented_commands_are_ignored_by_git():
    """What the README's and docs' commands and examples write into the checkout never shows up as a change."""
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    written = ["results/runs/x", "results/judges/x", "exports/x", "results/rebuilt/x", "my_submission/x.mp4",
               "results/leaderboard/x", "results/tables/x", "results/plots/x", "results/plans.jsonl",
               "results/calibration/x", "results/analysis/x", "site/alignvid-smoke/index.html",
               "omiti2v-examples/tiny-judge/x", "outputs/x", "multirun/x"]
    proc = subprocess.run(["git", "check-ignore", "--no-index", *written], cwd=REPO, capture_output=True, text=True)
    assert proc.stdout.split() == written
