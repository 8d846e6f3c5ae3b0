"""The file layout of an export, readable without importing `datasets` (run discovery checks every folder)."""

from __future__ import annotations

from pathlib import Path

SPLITS = ("questions", "videos")
SUMMARY_FILE = "summary.json"
# The run's per-sample table, copied beside summary.json: tables read an export as they read a run folder.
SAMPLES_FILE = "samples.csv"
# The Hub copy's export description (a Parquet split has no DatasetInfo.description).
HUB_META_FILE = "omiti2v_export.json"


def is_export(path: Path) -> bool:
    """An export folder, or a downloaded Hub copy of one."""
    return (path / SUMMARY_FILE).is_file() and ((path / "dataset_dict.json").is_file() or (path / HUB_META_FILE).is_file())
