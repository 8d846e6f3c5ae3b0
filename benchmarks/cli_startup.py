"""How fast the command line answers on a CPU: `omiti2v --help`, every subcommand's `--help`, `omiti2v plan
--table`, and a runner's checks ending in one `error:` line before anything loads (a misspelt group option, a
bad value, an unknown key; the preflight's missing judge). Each command runs in a fresh interpreter
(what a user waits for), `--repeats` times; the median wall time and the child's CPU time (user + system: what
it costs on an idle machine; wall time on a loaded one says little) are printed per command, then one JSON line.
Targets: every `--help` under 1 s; the checks well under the 11 s they took when the check imported torch.

    python benchmarks/cli_startup.py                 # every command, 3 repeats
    python benchmarks/cli_startup.py --repeats 1 --only help
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HELP_TARGET_S = 1.0


def commands(results: Path) -> dict[str, tuple[str, list[str]]]:
    """label -> (kind, argv after the interpreter)."""
    from omiti2v.cli import COMMANDS

    omiti2v = ["-m", "omiti2v.cli"]
    runner = [str(REPO / "runners" / "eval.py"), f"results_root={results}"]
    table = results / "plans.jsonl"
    table.write_text("")
    found = {"omiti2v --help": ("help", [*omiti2v, "--help"])}
    found.update({f"omiti2v {name} --help": ("help", [*omiti2v, name, "--help"]) for name in COMMANDS})
    found["omiti2v plan --table"] = ("table", [*omiti2v, "plan", "--table", str(table)])
    found.update({
        "eval asm=scaler": ("check", [*runner, "asm=scaler"]),
        "eval judge.batch_samples=-2": ("check", [*runner, "judge.batch_samples=-2"]),
        "eval +asm.gama_q=1.5": ("check", [*runner, "+asm.gama_q=1.5"]),
        "eval model=wan2.1-tiny variant=gq1.5": ("check", [*runner, "model=wan2.1-tiny", "variant=gq1.5"]),
        # the preflight (offline here): the judge checkpoint is missing, found before generation
        "eval model=wan2.1-tiny judge=qwen2.5-vl-7b": ("preflight", [*runner, "model=wan2.1-tiny",
                                                                     "judge=qwen2.5-vl-7b"]),
    })
    return found


def timed(argv: list[str], cwd: Path) -> tuple[float, float, int, str]:
    """(wall seconds, CPU seconds of the child: user + system, exit code, first `error:` line)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}  # the preflight must not wait for a hub
    proc = subprocess.run([sys.executable, *argv], cwd=cwd, capture_output=True, text=True, timeout=600, env=env)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    return wall, cpu, proc.returncode, errors[0] if errors else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="runs per command (median reported)")
    parser.add_argument("--only", choices=("help", "table", "check", "preflight"), default=None, help="one kind of command")
    args = parser.parse_args()
    rows = {}
    with tempfile.TemporaryDirectory(prefix="omiti2v-cli-startup-") as tmp:
        for label, (kind, argv) in commands(Path(tmp)).items():
            if args.only and kind != args.only:
                continue
            runs = [timed(argv, Path(tmp)) for _ in range(args.repeats)]
            seconds, cpu = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
            rows[label] = {"kind": kind, "seconds": round(seconds, 3), "cpu_seconds": round(cpu, 3), "exit": runs[0][2],
                           "error": runs[0][3]}
            print(f"{label:45s} {seconds:6.2f} s wall {cpu:6.2f} s CPU  exit {runs[0][2]}  {runs[0][3][:60]}",
                  flush=True)
    helps = [r["seconds"] for r in rows.values() if r["kind"] == "help"]
    summary = {"commands": rows, "slowest_help_s": max(helps, default=None),
               "help_under_target": all(s < HELP_TARGET_S for s in helps), "help_target_s": HELP_TARGET_S}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
