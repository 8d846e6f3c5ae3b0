"""Runs and submissions as Hugging Face `datasets` (on disk and on the Hub). `omiti2v export` is
omiti2v/leaderboard/export_cli.py: a leaderboard run's entry travels in its export and links back to it."""

from __future__ import annotations

import json
import shlex
import tempfile
from pathlib import Path

from ..registry import lazy_exports
from .layout import SAMPLES_FILE, SUMMARY_FILE, is_export

# `datasets` takes seconds to import: the modules that need it load on first use.
__getattr__ = lazy_exports(__name__, {
    ".dataset": ("ExportError", "ExportedRun", "build_export", "load_export", "write_export"),
    ".hub": ("PushUnavailableError", "preflight", "push_export"),
})

__all__ = ["ExportError", "ExportedRun", "PushUnavailableError", "build_export", "export_run", "is_export",
           "load_export", "write_export"]


def run_benchmark(run_path: Path, summary: dict):
    """The selection the run was made on (its config's data group), checked against the summary's hash."""
    from omegaconf import OmegaConf

    from ..data import DatasetUnavailableError, DataValidationError, benchmark_from_config
    from .dataset import ExportError

    config = run_path / "config.yaml"
    if not config.is_file():
        raise ExportError(f"{config}: missing; the export needs the run's data group to list its samples")
    try:
        bench = benchmark_from_config(OmegaConf.load(config).data)
    except (DatasetUnavailableError, DataValidationError, FileNotFoundError, ValueError) as exc:
        raise ExportError(f"{run_path}: the run's benchmark is unavailable here: {str(exc).splitlines()[0]}") from exc
    expected = (summary.get("benchmark") or {}).get("hash")
    if expected and expected != bench.content_hash():
        raise ExportError(f"{run_path}: the benchmark here ({bench.content_hash()}) is not the one the run used "
                          f"({expected}); point data.root at the run's copy")
    return bench


def export_run(run_dir: str | Path, out: str | Path | None = None, repo_id: str | None = None,
               overwrite: bool = False, private: bool | None = None, entry: dict | None = None) -> dict:
    """Export a run folder (summary.json, samples.csv and the records) to `out` and/or the Hub, with its
    leaderboard `entry` if it has one. Returns {"path", "url"} (None where not applicable)."""
    from .dataset import ExportError, build_export, write_export
    from .hub import preflight, push_export

    run_dir = Path(run_dir)
    if out is None and repo_id is None:
        raise ExportError("nothing to do: give --out DIR and/or --push-to-hub REPO_ID")
    token = None
    if repo_id:
        later = shlex.join(["omiti2v", "export", str(run_dir), *(["--out", str(out)] if out else []),
                            "--push-to-hub", repo_id, *(["--overwrite"] if out else [])])
        token = preflight(repo_id, later)
    summary_path, samples_path = run_dir / SUMMARY_FILE, run_dir / SAMPLES_FILE
    if not summary_path.is_file():
        raise ExportError(f"{run_dir}: no summary.json; finish the run (its summary stage) before exporting")
    summary_bytes = summary_path.read_bytes()
    dataset = build_export(run_dir, run_benchmark(run_dir, json.loads(summary_bytes)), entry)
    beside = {SUMMARY_FILE: summary_bytes}
    if samples_path.is_file():  # a run summarized before samples.csv existed has none
        beside[SAMPLES_FILE] = samples_path.read_bytes()
    url = None
    with tempfile.TemporaryDirectory(prefix="omiti2v-export-") as tmp:
        path = write_export(dataset, beside, out if out is not None else Path(tmp) / "export", overwrite)
        if repo_id:
            url = push_export(path, repo_id, token, later, private)
    return {"path": path if out is not None else None, "url": url}
