"""Leaderboard entries and their exported datasets: a run exported with its entry, which then links to the
export (`omiti2v export`), and a leaderboard rebuilt from a folder of exports alone (`omiti2v leaderboard
--from-datasets FOLDER`)."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from ..errors import SetupError
from ..paths import confined
from ..runs import atomic_write_json
from ..safeload import read_json
from ..schemas import current_version
from .board import MAX_ENTRY_BYTES, rebuild_leaderboard, validate_entry

log = logging.getLogger(__name__)


def find_entry(run_dir: Path) -> tuple[Path, dict] | None:
    """(entry path, entry) when `run_dir` is a leaderboard run <root>/runs/<name> with <root>/entries/<name>.json."""
    run_dir = Path(run_dir).resolve()
    path = run_dir.parent.parent / "entries" / f"{run_dir.name}.json"
    if run_dir.parent.name != "runs" or not path.is_file():
        return None
    entry = read_json(path, max_bytes=MAX_ENTRY_BYTES)
    validate_entry(entry, str(path))
    return path, entry


def link_dataset(entry_path: Path, entry: dict, path: Path | None, repo_id: str | None) -> dict:
    """Record where the entry's evidence was exported, then rebuild that leaderboard's page."""
    linked = {**entry, "dataset": {"path": str(path) if path else None, "repo_id": repo_id}}
    validate_entry(linked, str(entry_path))
    atomic_write_json(entry_path, linked)
    rebuild_leaderboard(entry_path.parent.parent)
    return linked


def publish_run(run_dir: str | Path, out: str | Path | None = None, repo_id: str | None = None,
                overwrite: bool = False, private: bool | None = None) -> dict:
    """`export_run`; a leaderboard run's entry travels in the export and gets a link to it.

    Returns {"path", "url", "entry"} (None where not applicable)."""
    from ..export import export_run

    found = find_entry(Path(run_dir))
    result = export_run(run_dir, out, repo_id, overwrite, private, entry=found[1] if found else None)
    if found:
        link_dataset(*found, path=result["path"], repo_id=repo_id)
    return {**result, "entry": found[0] if found else None}


def refresh_entry_judges(run_dir: Path) -> Path | None:
    """After `omiti2v rejudge` rewrote a leaderboard run's summary.json: its entry takes the summary's new hash
    and per-judge cells, and the page is rebuilt. Returns the entry path; None when `run_dir` is no entry's run."""
    from ..report.runs import extra_judge_cells

    found = find_entry(run_dir)
    if found is None:
        return None
    path, entry = found
    summary_path = Path(run_dir) / "summary.json"
    digest = "sha256:" + hashlib.sha256(summary_path.read_bytes()).hexdigest()
    judges = extra_judge_cells(read_json(summary_path))
    entry = {k: v for k, v in entry.items() if k != "judges"} | {"schema_version": current_version("leaderboard_entry"),
                                                                 "hashes": {**entry["hashes"], "summary": digest}}
    if judges:
        entry["judges"] = judges
    validate_entry(entry, str(path))
    atomic_write_json(path, entry)
    rebuild_leaderboard(path.parent.parent)
    return path


def entry_from_export(export) -> dict:
    """The export's leaderboard entry, linked to it, after checking it against the exported evidence:
    the summary hash the entry recorded matches the export's summary.json, and so do its metrics."""
    entry = export.entry
    if entry is None:
        raise ValueError(f"{export.path}: not a leaderboard submission (its export holds no entry)")
    digest = "sha256:" + hashlib.sha256((export.path / "summary.json").read_bytes()).hexdigest()
    if entry["hashes"]["summary"] != digest:
        raise ValueError(f"{export.path}: summary.json does not match the entry's hashes.summary")
    if entry["metrics"] != export.summary["metrics"]:
        raise ValueError(f"{export.path}: the entry's metrics differ from the exported summary's")
    repo_id = (entry.get("dataset") or {}).get("repo_id")
    linked = {**entry, "dataset": {"path": str(export.path), "repo_id": repo_id}}
    validate_entry(linked, str(export.path))
    return linked


def rebuild_from_exports(folder: str | Path, leaderboard: str | Path) -> tuple[Path, Path, int]:
    """Write <leaderboard>/entries/ from every submission export under `folder` and rebuild the page.

    An export that cannot be read or does not check out is skipped with a warning naming it.
    Returns (csv, html, number of entries written)."""
    from ..export import ExportError, is_export, load_export

    folder, leaderboard = Path(folder), Path(leaderboard)
    if not folder.is_dir():
        raise SetupError(f"--from-datasets {folder}: no such folder; nothing was written")
    exports = sorted(p for p in [folder, *folder.rglob("*")] if p.is_dir() and is_export(p))
    if not exports:
        raise SetupError(f"--from-datasets {folder}: holds no export (`omiti2v export` folders); nothing was written")
    written = 0
    for path in exports:
        try:
            entry = entry_from_export(load_export(path))
        except (ExportError, ValueError, KeyError) as exc:
            log.warning("skipping export %s", str(exc).splitlines()[0])
            continue
        atomic_write_json(confined(leaderboard / "entries", f"{entry['name']}.json"), entry)
        written += 1
    csv_path, html_path = rebuild_leaderboard(leaderboard)
    return csv_path, html_path, written
