"""Loading the OmitI2V benchmark from a local root, the Hugging Face hub, or the bundled mini set."""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..config_rules import number, one_of, subset_of
from ..errors import SetupError
from ..paths import UnsafePathError, confined, shipped
from ..safeload import ParseError, read_json
from .dataset_source import is_dataset_root, load_dataset_samples
from .records import MAIN_CATEGORIES, DataValidationError, Sample, parse_records

HF_DATASET_ID = "AIPeanutman/OmitI2V"
# Environment variable naming a local dataset root; the Hydra key is `data.root`.
DATA_ROOT_ENV = "OMITI2V_DATA"
MINI_ROOT = shipped("benchmark_data/mini")


class DatasetUnavailableError(SetupError, RuntimeError):
    """The benchmark cannot be found locally and cannot be downloaded."""


@dataclass(frozen=True)
class Benchmark:
    """A validated, possibly filtered, list of samples with where they came from."""

    root: Path
    samples: tuple[Sample, ...]
    source: str

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self) -> Iterator[Sample]:
        return iter(self.samples)

    def __getitem__(self, sample_id: str) -> Sample:
        for s in self.samples:
            if s.id == sample_id:
                return s
        raise KeyError(f"no sample {sample_id!r} in {self.root}")

    @property
    def ids(self) -> list[str]:
        return [s.id for s in self.samples]

    def filter(
        self,
        categories: Iterable[str] | None = None,
        domains: Iterable[str] | None = None,
        ids: Iterable[str] | None = None,
        limit: int | None = None,
    ) -> Benchmark:
        """Keep samples matching every given criterion, in benchmark order, then the first `limit`."""
        categories = list(categories) if categories else None
        if categories:
            unknown = sorted(set(categories) - set(MAIN_CATEGORIES))
            if unknown:
                raise ValueError(f"data.categories: unknown main categories {unknown}; expected {MAIN_CATEGORIES}")
        wanted = list(ids) if ids else None
        if wanted:
            missing = sorted(set(wanted) - set(self.ids))
            if missing:
                raise ValueError(f"data.ids: not in the benchmark at {self.root}: {missing}")
        domains = set(domains) if domains else None
        kept = [
            s
            for s in self.samples
            if (not categories or s.main_category in categories)
            and (not domains or s.domain in domains)
            and (not wanted or s.id in wanted)
        ]
        if limit is not None:
            if limit < 0:
                raise ValueError(f"data.limit must be >= 0, got {limit}")
            kept = kept[:limit]
        if not kept and (categories or domains or wanted or limit is not None):
            raise DatasetUnavailableError(f"data.categories/domains/ids/limit: the selection keeps none of the "
                                          f"{len(self.samples)} samples at {self.root}")
        return Benchmark(self.root, tuple(kept), self.source)

    def content_hash(self) -> str:
        """sha256 over the selected records (canonical JSON) and their image bytes, in order."""
        h = hashlib.sha256()
        for s in self.samples:
            h.update(json.dumps(s.raw, sort_keys=True, ensure_ascii=False).encode())
            h.update(s.image_path.read_bytes())
        return "sha256:" + h.hexdigest()

    def summary(self) -> dict:
        """Counts per main category, domain, style and question category."""
        return {
            "samples": len(self.samples),
            "questions": sum(len(s.questions) for s in self.samples),
            "main_category": dict(Counter(s.main_category for s in self.samples)),
            "domain": dict(Counter(s.domain for s in self.samples).most_common()),
            "style": dict(Counter(s.style for s in self.samples if s.style)),
            "question_category": dict(Counter(q.category for s in self.samples for q in s.questions).most_common()),
        }


def load_local(root: str | os.PathLike, check_images: bool = True, source: str | None = None) -> Benchmark:
    """Load and validate a dataset root in the official layout (`meta.json` + images) or a `datasets` copy of it
    (omiti2v/data/dataset_source.py)."""
    root = Path(root).expanduser().resolve()
    meta_path = root / "meta.json"
    if not root.is_dir():
        raise DataValidationError([f"{root}: no such folder (a dataset root holds meta.json and the images)"])
    if not os.path.lexists(meta_path) and is_dataset_root(root):
        return Benchmark(root, tuple(load_dataset_samples(root, check_images)), source or f"datasets:{root}")
    if not os.path.lexists(meta_path):
        raise DataValidationError([f"{meta_path}: not found (a dataset root holds meta.json and the images)"])
    try:
        meta = read_json(confined(root, "meta.json"))
    except (ParseError, UnsafePathError) as exc:
        raise DataValidationError([str(exc)]) from None
    samples = parse_records(meta, meta_path, root, check_images=check_images)
    return Benchmark(root, tuple(samples), source or f"local:{root}")


def download_hf(repo_id: str = HF_DATASET_ID, revision: str | None = None) -> Path:
    """Fetch the dataset repo into the HF cache (or reuse it) and return the folder holding meta.json."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        path = Path(snapshot_download(repo_id, repo_type="dataset", revision=revision))
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as exc:
        raise DatasetUnavailableError(
            f"The OmitI2V benchmark ({repo_id}) is not in the Hugging Face cache and cannot be downloaded "
            f"({type(exc).__name__}). Download it on a machine with network access, e.g.\n"
            f"  hf download {repo_id} --repo-type dataset --local-dir /path/to/OmitI2V\n"
            f"then point the harness at it with the Hydra override `data=local data.root=/path/to/OmitI2V` "
            f"or the environment variable {DATA_ROOT_ENV}=/path/to/OmitI2V."
        ) from exc
    metas = sorted(path.rglob("meta.json"), key=lambda p: len(p.parts))
    if metas:
        return metas[0].parent
    if is_dataset_root(path):
        return path
    raise DatasetUnavailableError(f"{repo_id} was downloaded to {path} but holds no meta.json nor Parquet files")


def load_benchmark(
    source: str = "mini",
    root: str | None = None,
    hf_id: str = HF_DATASET_ID,
    revision: str | None = None,
    categories: Sequence[str] | None = None,
    domains: Sequence[str] | None = None,
    ids: Sequence[str] | None = None,
    limit: int | None = None,
    check_images: bool = True,
) -> Benchmark:
    """Resolve `source` ("mini", "hf" or "local") to a validated, filtered benchmark."""
    if source == "mini":
        bench = load_local(MINI_ROOT, check_images, source="mini")
    elif source == "local":
        root = root or os.environ.get(DATA_ROOT_ENV)
        if not root:
            raise DatasetUnavailableError(
                f"data.source=local needs a dataset root: set data.root=/path/to/OmitI2V or {DATA_ROOT_ENV}"
            )
        bench = load_local(root, check_images)
    elif source == "hf":
        local = root or os.environ.get(DATA_ROOT_ENV)
        folder = Path(local) if local else download_hf(hf_id, revision)
        bench = load_local(folder, check_images, source=f"hf:{hf_id}" + (f"@{revision}" if revision else ""))
    else:
        raise ValueError(f"data.source: unknown value {source!r}; expected {', '.join(SOURCES)}")
    return bench.filter(categories, domains, ids, limit)


SOURCES = ("mini", "hf", "local")  # the branches of load_benchmark
# The `data` group as benchmark_from_config reads it, checked before anything loads.
CONFIG_RULES = {
    "data.source": one_of(*SOURCES),
    "data.limit": number(ge=1, nullable=True, integer=True),
    "data.categories": subset_of(*MAIN_CATEGORIES),
}


def config_problems(cfg) -> list[str]:
    data = cfg.get("data") or {}
    if data.get("source") == "local" and data.get("root") in (None, "", "???"):
        return [f"data.root is required with data=local (or set {DATA_ROOT_ENV})"]
    return []


def benchmark_from_config(data: Mapping) -> Benchmark:
    """The benchmark a `data` config group selects (conf/data/*.yaml; a run folder's config.yaml has one too)."""
    return load_benchmark(
        source=data["source"],
        root=data.get("root"),
        hf_id=data.get("hf_id") or HF_DATASET_ID,
        revision=data.get("revision"),
        categories=data.get("categories"),
        domains=data.get("domains"),
        ids=data.get("ids"),
        limit=data.get("limit"),
    )
