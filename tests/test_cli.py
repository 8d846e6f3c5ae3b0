"""`omiti2v`: `--help`, every subcommand's `--help` and `plan --table` answer without importing torch, scipy or
diffusers (checked in a fresh interpreter, not timed: benchmarks/cli_startup.py times them); the command table
and the parsers the modules register agree; a misspelt command gets the closest name."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from omiti2v.cli import COMMANDS, build_parser, main

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "scipy", "diffusers", "transformers", "pandas", "datasets")


def test_help_paths_import_no_heavy_library(tmp_path):
    table = tmp_path / "plans.jsonl"
    table.write_text("")
    runs = [["--help"], *([name, "--help"] for name in COMMANDS), ["plan", "--table", str(table)]]
    code = ("import contextlib, io, json, sys\n"
            "from omiti2v.cli import main\n"
            f"for argv in {runs!r}:\n"
            "    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
            "        main(argv)\n"
            f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.splitlines()[-1]) == []


def test_the_table_names_every_command_its_module_registers(capsys):
    parser = build_parser()  # every module registered
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(sub.choices) == set(COMMANDS)
    for name in COMMANDS:  # registered for real (not a stub): it has a handler, and the table's summary
        assert callable(sub.choices[name].get_default("func")), name
    listed = {a.dest: a.help for a in sub._choices_actions}
    assert listed == {name: COMMANDS.summary(name) for name in COMMANDS}
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert all(name in out for name in COMMANDS)


def test_a_misspelt_command_gets_the_closest_name(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["tabels"])
    assert exit_.value.code == 2
    assert "command: unknown value 'tabels'; did you mean tables?" in capsys.readouterr().err


def test_plan_and_calibrate_mistakes_are_one_line(capsys, tmp_path):
    assert main(["plan", "--asm", "scaler"]) == 2
    assert main(["calibrate", "--model", "wan21"]) == 2
    assert main(["plan", "--table", str(tmp_path / "none.jsonl")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "error: asm: unknown value 'scaler'; did you mean scalar? (options: conf/asm/*.yaml)"
    assert err[1] == "error: model: unknown value 'wan21'; did you mean wan2.1? (options: conf/model/*.yaml)"
    assert err[2].startswith(f"error: --table {tmp_path / 'none.jsonl'}: no such file") and len(err) == 3
