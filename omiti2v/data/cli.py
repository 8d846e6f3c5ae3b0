"""`omiti2v validate-data [PATH...]`: check dataset roots (default: the bundled mini set) and print each one's
composition or every problem."""

from __future__ import annotations

import json

from .benchmark import MINI_ROOT, load_local
from .records import DataValidationError


def register(sub) -> None:
    p = sub.add_parser("validate-data")
    p.add_argument("path", nargs="*", default=[str(MINI_ROOT)],
                   help="dataset root(s) holding meta.json (default: the bundled mini set)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=validate_data)


def validate_data(args) -> int:
    return max(validate_root(path, args.json) for path in args.path)


def validate_root(path: str, as_json: bool) -> int:
    try:
        bench = load_local(path)
    except DataValidationError as exc:
        for line in exc.errors:
            print(f"error: {line}")
        print(f"{len(exc.errors)} problem(s); the benchmark at {path} is not valid")
        return 1
    summary = bench.summary()
    if as_json:
        print(json.dumps({**summary, "hash": bench.content_hash()}, indent=2, allow_nan=False))
        return 0
    print(f"{bench.root}: valid, {summary['samples']} samples, {summary['questions']} questions")
    print(f"hash: {bench.content_hash()}")
    for key in ("main_category", "domain", "style", "question_category"):
        if summary[key]:
            print(f"{key}: " + ", ".join(f"{k} {v}" for k, v in summary[key].items()))
    return 0
