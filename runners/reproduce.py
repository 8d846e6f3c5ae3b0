"""`make reproduce TABLE=main|modulation|schedule|methods [MODEL=...] [DRY_RUN=1] [ARGS=...]`: the runs of one paper table, then
the table. Extra arguments are Hydra overrides for every run (e.g. hydra/launcher=slurm, data=mini)."""

import argparse
import sys

from omiti2v.reproduce import TABLES, reproduce

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--table", required=True, choices=TABLES)
    parser.add_argument("--dry-run", action="store_true", help="print the runs and their GPU-hours, run nothing")
    parser.add_argument("--model", help="run every sweep on this model only (a -tiny model: the smoke config)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides passed to every run")
    args = parser.parse_args()
    sys.exit(reproduce(args.table, args.overrides, args.dry_run, args.model))
