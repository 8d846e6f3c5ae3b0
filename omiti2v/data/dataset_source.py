"""The benchmark stored as a Hugging Face `datasets` dataset: one row per meta.json record plus an `image`
column holding the image file's bytes (a save_to_disk folder, a one-split DatasetDict, or Parquet files).

Rows go back to exactly the meta.json records and the images to their original bytes (extracted once into a
cache folder), so the same validation rules apply and `Benchmark.content_hash` (records + image bytes) is
the same as for the meta.json copy of the same data.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from ..paths import UnsafePathError, confined
from .records import OPTIONAL_FIELDS, DataValidationError, Sample, parse_records

IMAGE_COLUMN = "image"
# Where images of a datasets copy are extracted; one subfolder per distinct set of images.
CACHE_ENV = "OMITI2V_CACHE"


def parquet_files(root: Path) -> list[Path]:
    """Parquet files at the root or one folder down (the Hub's data/<split>-*.parquet layout)."""
    return sorted(root.glob("*.parquet")) + sorted(root.glob("*/*.parquet"))


def saved_dataset(root: Path) -> bool:
    return any((root / name).is_file() for name in ("dataset_info.json", "dataset_dict.json"))


def is_dataset_root(root: Path) -> bool:
    return saved_dataset(root) or bool(parquet_files(root))


def _rows(root: Path) -> list[dict]:
    """The dataset's rows as plain values, images as {"bytes", "path"} (never decoded, so never re-encoded)."""
    import datasets
    import pyarrow.parquet as pq

    try:
        if not saved_dataset(root):
            return [row for f in parquet_files(root) for row in pq.read_table(f).to_pylist()]
        ds = datasets.load_from_disk(str(root))
    except Exception as exc:  # noqa: BLE001 - pyarrow and datasets raise many types for damaged files
        raise DataValidationError([f"{root}: the dataset cannot be read ({type(exc).__name__}: {exc})"]) from exc
    if isinstance(ds, datasets.DatasetDict):
        if len(ds) != 1:
            raise DataValidationError([f"{root}: a benchmark DatasetDict must hold one split, found {sorted(ds)}"])
        ds = next(iter(ds.values()))
    return ds.with_format("arrow")[:].to_pylist()


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "omiti2v") / "benchmark-images"


def extract_images(rows: list[dict], where: Path) -> tuple[list[dict], Path, list[str]]:
    """(records without the image column, folder the images were written to, problems)."""
    errors: list[str] = []
    if rows and IMAGE_COLUMN not in rows[0]:
        return rows, where, [f"{where}: no '{IMAGE_COLUMN}' column (the image bytes of each record)"]
    digest = hashlib.sha256()
    for row in rows:
        image = row.get(IMAGE_COLUMN) or {}
        digest.update(str(row.get("image-path")).encode() + b"\0" + (image.get("bytes") or b""))
    folder = (cache_root() / digest.hexdigest()[:24]).resolve()
    records = []
    for index, row in enumerate(rows):
        image = row.pop(IMAGE_COLUMN, None) or {}
        # Parquet gives every row every column: an optional field a record did not have comes back as None.
        record = {k: v for k, v in row.items() if not (k in OPTIONAL_FIELDS and v is None)}
        records.append(record)
        where_rec = f"{where}: record {index} (id={record.get('id')!r})"
        rel = record.get("image-path")
        if not image.get("bytes"):
            errors.append(f"{where_rec}: field '{IMAGE_COLUMN}': no image bytes")
            continue
        if not isinstance(rel, str):
            continue  # parse_records names the bad field
        try:
            target = confined(folder, *rel.split("/"))
        except UnsafePathError:
            continue  # parse_records names it (the same rule as for a meta.json copy)
        if not target.is_file() or target.read_bytes() != image["bytes"]:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.{os.getpid()}")
            tmp.write_bytes(image["bytes"])
            os.replace(tmp, target)
    return records, folder, errors


def load_dataset_samples(root: Path, check_images: bool = True) -> list[Sample]:
    """Validate a datasets copy of the benchmark by the meta.json rules; raise DataValidationError with all problems."""
    records, folder, errors = extract_images(_rows(root), root)
    try:
        samples = parse_records(records, root, folder, check_images=check_images and not errors)
    except DataValidationError as exc:
        errors += exc.errors
    if errors:
        raise DataValidationError(errors)
    return samples


def benchmark_to_dataset(samples: list[Sample]):
    """A `datasets.Dataset` copy of benchmark samples: their meta.json records plus an `image` column."""
    import datasets

    fields = list(dict.fromkeys(k for s in samples for k in s.raw))  # from_list takes its columns from row 0
    rows = [{**{k: s.raw.get(k) for k in fields}, IMAGE_COLUMN: {"bytes": s.image_path.read_bytes(),
                                                               "path": s.raw["image-path"]}} for s in samples]
    return datasets.Dataset.from_list(rows).cast_column(IMAGE_COLUMN, datasets.Image())
