"""Run many `omiti2v` command lines in one process (one interpreter start for a whole group of crafted inputs).

Usage: python tests/cli_batch.py CASES.json RESULTS.jsonl, where CASES.json is a list of {"name", "argv"}.
Each case's stdout and stderr are captured; an exception escaping `omiti2v.cli.main` is written to its stderr as
the interpreter would print it (a traceback), so the caller sees exactly what a user would.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import traceback

from omiti2v.cli import main


def run_case(argv: list[str]) -> dict:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(argv)
        except SystemExit as exc:
            rc = exc.code if isinstance(exc.code, int) else 1
        except BaseException:  # noqa: BLE001 - report it the way the interpreter would, then go on
            traceback.print_exc()
            rc = 1
    return {"rc": rc, "stdout": out.getvalue(), "stderr": err.getvalue()}


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8") as f:
        cases = json.load(f)
    with open(sys.argv[2], "w", encoding="utf-8") as results:
        for case in cases:
            results.write(json.dumps({"name": case["name"], **run_case(case["argv"])}) + "\n")
            results.flush()
