"""Uploading an export to the Hugging Face Hub as one commit (Parquet splits, summary.json, export metadata).

The checks that need no network (offline mode, a token) run before anything is exported, so a push that
cannot happen writes nothing; the upload itself is a single commit, so the Hub repo gets all files or none.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import datasets

from .dataset import ExportError
from .layout import HUB_META_FILE, SAMPLES_FILE, SPLITS, SUMMARY_FILE

TRUTHY = {"1", "ON", "YES", "TRUE"}


class PushUnavailableError(ExportError):
    """The Hub cannot be reached or no token is set; the message says how to push later."""


def offline() -> bool:
    from huggingface_hub import constants

    return constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "").upper() in TRUTHY


def push_help(repo_id: str, later: str, reason: str) -> str:
    return (f"cannot push to the Hugging Face Hub dataset {repo_id}: {reason}. Nothing was uploaded. On a machine "
            f"with network access, set HF_TOKEN (a write token from https://huggingface.co/settings/tokens, or run "
            f"`hf auth login`) and run:\n  {later}")


def preflight(repo_id: str, later: str) -> str:
    """The token to push with, or PushUnavailableError (offline mode, no token) before any work is done."""
    from huggingface_hub import get_token

    if offline():
        raise PushUnavailableError(push_help(repo_id, later, "HF_HUB_OFFLINE is set"))
    token = get_token()
    if not token:
        raise PushUnavailableError(push_help(repo_id, later, "no token (HF_TOKEN is not set and no login is stored)"))
    return token


DATASET_CARD = """---
configs:
- config_name: default
  data_files:
{files}
---
# OmitI2V results: {name}

Per-question judge verdicts (`questions`) and per-video scores and generation records (`videos`) of one
OmitI2V run, exported by `omiti2v export`. `{summary}` is the run's summary (metrics, versions, hashes),
`{samples}` its per-sample table; `{meta}` carries the summary, the run config and, for a leaderboard
submission, its entry.
"""


def stage_upload(export: Path, folder: Path) -> None:
    """Lay out the Hub copy of an export: data/<split>.parquet, README.md, summary.json, samples.csv, the metadata."""
    (folder / "data").mkdir(parents=True, exist_ok=True)
    dd = datasets.load_from_disk(str(export))
    meta = json.loads(dd["videos"].info.description)
    for split in SPLITS:
        dd[split].to_parquet(str(folder / "data" / f"{split}-00000-of-00001.parquet"))
    files = "\n".join(f"  - split: {s}\n    path: data/{s}-*.parquet" for s in SPLITS)
    card = DATASET_CARD.format(files=files, name=meta["summary"]["run"]["name"], summary=SUMMARY_FILE,
                               samples=SAMPLES_FILE, meta=HUB_META_FILE)
    (folder / "README.md").write_text(card, encoding="utf-8")
    for name in (SUMMARY_FILE, SAMPLES_FILE):
        if (export / name).is_file():
            shutil.copyfile(export / name, folder / name)
    (folder / HUB_META_FILE).write_text(json.dumps(meta, indent=2, ensure_ascii=False, allow_nan=False) + "\n", encoding="utf-8")


def push_export(export: Path, repo_id: str, token: str, later: str, private: bool | None = None) -> str:
    """Upload the export in one commit; returns the dataset's URL."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    with tempfile.TemporaryDirectory(prefix="omiti2v-push-") as tmp:
        stage_upload(Path(export), Path(tmp))
        try:
            api.create_repo(repo_id, repo_type="dataset", exist_ok=True, private=private)
            api.upload_folder(repo_id=repo_id, folder_path=tmp, repo_type="dataset",
                              commit_message="OmitI2V results export")
        except Exception as exc:  # noqa: BLE001 - network and HTTP errors come from several libraries
            raise PushUnavailableError(push_help(repo_id, later, f"{type(exc).__name__}: {str(exc).splitlines()[0]}")) from exc
    return f"https://huggingface.co/datasets/{repo_id}"
