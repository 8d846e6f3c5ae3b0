"""Scorer weights: one cache folder (`scorer.weights_dir`, env OMITI2V_WEIGHTS), checked up front.

Every scorer lists the files it needs; `resolve_weights` looks for all of them before any model loads, so an
offline machine gets ONE error naming every missing file, where it comes from and where to put it, instead of
failing on the first model after minutes of work.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SetupError


class MissingWeightsError(SetupError, FileNotFoundError):
    """Weights needed by the configured scorers are not on this machine and may not be downloaded."""


def downloads_allowed(allow_download: bool) -> bool:
    """Downloads happen only when the config allows them and the Hugging Face offline switches are off."""
    offline = any(os.environ.get(k, "").lower() in ("1", "true", "yes") for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))
    return bool(allow_download) and not offline


@dataclass(frozen=True)
class WeightFile:
    """A checkpoint file (`url` set) or a Hugging Face model folder (`hub_id` set).

    Files are looked for as weights_dir/filename, then in `also_in` (e.g. torch hub's checkpoint cache).
    Hub models are looked for as the folder weights_dir/filename, then in the Hugging Face cache.
    An archive (`unpack_into` set) is a zip whose contents go to weights_dir/unpack_into, its single top folder
    renamed `top_folder` when given; `filename` is then one file it holds, the sign that it is unpacked.
    """

    label: str
    filename: str
    url: str | None = None
    hub_id: str | None = None
    also_in: tuple[str, ...] = field(default=())
    unpack_into: str | None = None
    top_folder: str | None = None

    def find(self, weights_dir: Path) -> str | None:
        """Where the weights are on this machine (a path, or the hub id when in the HF cache), else None."""
        local = weights_dir / self.filename
        if self.hub_id is not None:
            if (local / "config.json").is_file():
                return str(local)
            from huggingface_hub import try_to_load_from_cache
            from huggingface_hub.errors import HFValidationError

            try:
                cached = try_to_load_from_cache(self.hub_id, "config.json")
            except HFValidationError:  # a local path that does not exist, not a hub id
                return None
            return self.hub_id if isinstance(cached, str) else None
        for folder in (weights_dir, *map(Path, self.also_in)):
            if (folder / self.filename).is_file():
                return str(folder / self.filename)
        return None

    def fetch(self, weights_dir: Path) -> str:
        """Download into weights_dir (files) or the HF cache (hub models, fetched by from_pretrained)."""
        if self.hub_id is not None:
            return self.hub_id
        from torch.hub import download_url_to_file

        target = weights_dir / self.filename
        target.parent.mkdir(parents=True, exist_ok=True)
        if self.unpack_into is not None:
            self._fetch_archive(weights_dir / self.unpack_into)
            return str(target)
        download_url_to_file(self.url, str(target), progress=True)  # writes a temp file, then renames
        return str(target)

    def _fetch_archive(self, folder: Path) -> None:
        import tempfile
        import zipfile

        from torch.hub import download_url_to_file

        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder) as tmp:
            archive = Path(tmp) / "archive.zip"
            download_url_to_file(self.url, str(archive), progress=True)
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(Path(tmp) / "out")
            for item in (Path(tmp) / "out").iterdir():
                item.rename(folder / (self.top_folder if self.top_folder and item.is_dir() else item.name))

    def instructions(self, weights_dir: Path) -> str:
        if self.hub_id is not None:
            return (f"- {self.label}: Hugging Face model {self.hub_id!r}; put a snapshot folder at "
                    f"{weights_dir / self.filename} (e.g. `hf download {self.hub_id} --local-dir "
                    f"{weights_dir / self.filename}`) or in the Hugging Face cache (HF_HOME)")
        if self.unpack_into is not None:
            named = f", its top folder renamed {self.top_folder}" if self.top_folder else ""
            return (f"- {self.label}: download {self.url} and unzip it into {weights_dir / self.unpack_into}{named} "
                    f"(so that {weights_dir / self.filename} exists)")
        return f"- {self.label}: download {self.url} and save it as {weights_dir / self.filename}"


def weights_dir_from(path: str | os.PathLike | None) -> Path:
    return Path(os.path.expanduser(str(path or "~/.cache/omiti2v"))).resolve()


def resolve_weights(files: list[WeightFile], weights_dir: Path, allow_download: bool) -> dict[str, str]:
    """label -> local path or hub id for every file; raises one MissingWeightsError listing all that are missing."""
    found: dict[str, str] = {}
    missing: list[WeightFile] = []
    for wf in files:
        where = wf.find(weights_dir)
        if where is not None:
            found[wf.label] = where
        elif downloads_allowed(allow_download):
            found[wf.label] = wf.fetch(weights_dir)
        else:
            missing.append(wf)
    if missing:
        lines = "\n".join(wf.instructions(weights_dir) for wf in missing)
        raise MissingWeightsError(
            f"{len(missing)} scorer weight file(s) missing and downloads are off (offline or scorer.allow_download=false).\n"
            f"{lines}\nThe folder is scorer.weights_dir (env OMITI2V_WEIGHTS), now {weights_dir}. "
            "Or run scorer=tiny for the offline smoke scorers."
        )
    return found
