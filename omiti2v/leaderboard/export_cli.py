"""`omiti2v export RUN_DIR --out DIR [--push-to-hub REPO_ID]`: a run's evidence as a Hugging Face dataset
(omiti2v/export/); a leaderboard run's entry travels in it and links to it (published.py)."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("export")
    p.add_argument("run_dir", help="run folder holding summary.json, config.yaml and the JSONL logs")
    p.add_argument("--out", help="export folder to create (datasets.load_from_disk reads it)")
    p.add_argument("--push-to-hub", metavar="REPO_ID", help="also upload it as a Hub dataset (needs HF_TOKEN)")
    p.add_argument("--private", action="store_true", help="create the Hub dataset as private")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")
    p.set_defaults(func=export_cmd)


def export_cmd(args) -> int:
    from .published import publish_run

    result = publish_run(args.run_dir, args.out, args.push_to_hub, overwrite=args.overwrite,
                         private=True if args.private else None)
    for label, value in (("exported to", result["path"]), ("pushed to", result["url"]),
                         ("linked in leaderboard entry", result["entry"])):
        if value:
            print(f"{label} {value}")
    return 0
