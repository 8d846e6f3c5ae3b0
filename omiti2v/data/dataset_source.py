"""The benchmark stored as a Hugging Face `datasets` dataset: one row per meta.json record plus an `image`
column holding the image file's bytes (a save_to_disk folder, a one-split DatasetDict, or Parquet files).
Rows are streamed one at a time with their decoded bytes counted, so a small file that decodes to gigabytes
is refused after a bounded amount of memory.

Rows go back to exactly the meta.json records and the images to their original bytes (extracted once into a
cache folder), so the same validation rules apply and `Benchmark.content_hash` (records + image bytes) is
the same as for the meta.json copy of the same data.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

from ..paths import UnsafePathError, confined
from ..runs import require_free_space, write_faults_named
from ..safeload import env_limit
from .records import MAX_IMAGE_BYTES, OPTIONAL_FIELDS, DataValidationError, Sample, _short, parse_records

IMAGE_COLUMN = "image"
# Where images of a datasets copy are extracted; one subfolder per distinct set of images.
CACHE_ENV = "OMITI2V_CACHE"
# What the rows of a datasets copy may decode to: in all, and relative to the bytes stored (Parquet's dictionary
# and run-length encodings turn kilobytes into gigabytes); the ratio is checked once the rows pass the grace.
MAX_DATASET_BYTES = env_limit("OMITI2V_MAX_DATASET_MB", 4096) << 20
DECODED_RATIO = 200
RATIO_GRACE_BYTES = 64 << 20


def parquet_files(root: Path) -> list[Path]:
    """Parquet files at the root or one folder down (the Hub's data/<split>-*.parquet layout)."""
    return sorted(root.glob("*.parquet")) + sorted(root.glob("*/*.parquet"))


def saved_dataset(root: Path) -> bool:
    return any((root / name).is_file() for name in ("dataset_info.json", "dataset_dict.json"))


def is_dataset_root(root: Path) -> bool:
    return saved_dataset(root) or bool(parquet_files(root))


def _batches(root: Path) -> Iterator:
    """The dataset one row at a time (pyarrow batches of one row), nothing decoded ahead. A Parquet column chunk
    whose metadata declares more than MAX_DATASET_BYTES uncompressed is refused before any row is read."""
    import datasets
    import pyarrow.parquet as pq

    if not saved_dataset(root):
        for path in parquet_files(root):
            parquet = pq.ParquetFile(path)
            meta = parquet.metadata
            for group in range(meta.num_row_groups):
                for column in range(meta.num_columns):
                    chunk = meta.row_group(group).column(column)
                    if chunk.total_uncompressed_size > MAX_DATASET_BYTES:
                        raise DataValidationError([
                            f"{path}: column {chunk.path_in_schema} declares {chunk.total_uncompressed_size >> 20} "
                            f"MiB uncompressed in row group {group} (at most {MAX_DATASET_BYTES >> 20}, "
                            "OMITI2V_MAX_DATASET_MB)"])
            yield from parquet.iter_batches(batch_size=1)
        return
    ds = datasets.load_from_disk(str(root))
    if isinstance(ds, datasets.DatasetDict):
        if len(ds) != 1:
            raise DataValidationError([f"{root}: a benchmark DatasetDict must hold one split, found {sorted(ds)}"])
        ds = next(iter(ds.values()))
    yield from ds.with_format("arrow").iter(batch_size=1)


def stored_bytes(root: Path) -> int:
    """Bytes of the dataset's files on disk: what its decoded rows are compared with."""
    files = parquet_files(root) if not saved_dataset(root) else [p for p in root.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files)


def rows(root: Path) -> Iterator[dict]:
    """The dataset's rows as plain values, images as {"bytes", "path"} (never decoded, so never re-encoded),
    streamed: each row's decoded bytes are counted before the next is read, and the reading stops once they
    pass MAX_DATASET_BYTES or DECODED_RATIO x the files' size (a small file that decodes to gigabytes)."""
    budget = min(MAX_DATASET_BYTES, max(DECODED_RATIO * stored_bytes(root), RATIO_GRACE_BYTES))
    decoded = 0
    try:
        for batch in _batches(root):
            decoded += batch.nbytes
            if decoded > budget:
                why = ("OMITI2V_MAX_DATASET_MB" if budget == MAX_DATASET_BYTES
                       else f"{DECODED_RATIO}x the {stored_bytes(root)} bytes stored: a decompression bomb")
                raise DataValidationError([f"{root}: the rows decode to more than {budget >> 20} MiB ({why})"])
            yield from batch.to_pylist()
    except DataValidationError:
        raise
    except Exception as exc:  # noqa: BLE001 - pyarrow and datasets raise many types for damaged files
        raise DataValidationError([f"{root}: the dataset cannot be read ({type(exc).__name__}: "
                                   f"{' '.join(str(exc).split())[:300]})"]) from None


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "omiti2v") / "benchmark-images"


def _image_problem(image: dict, where: str) -> str | None:
    size = len(image.get("bytes") or b"")
    if not size:
        return f"{where}: field '{IMAGE_COLUMN}': no image bytes"
    if size > MAX_IMAGE_BYTES:
        return f"{where}: field '{IMAGE_COLUMN}': {size} bytes, more than {MAX_IMAGE_BYTES} (OMITI2V_MAX_IMAGE_BYTES)"
    return None


def extract_images(root: Path) -> tuple[list[dict], Path, list[str]]:
    """(records without the image column, folder the images were written to, problems), in two streamed passes:
    the first checks every row and hashes the images (the folder's name), the second writes them."""
    errors: list[str] = []
    records: list[dict] = []
    digest = hashlib.sha256()
    needed = 0
    for index, row in enumerate(rows(root)):
        if index == 0 and IMAGE_COLUMN not in row:
            return [], root, [f"{root}: no '{IMAGE_COLUMN}' column (the image bytes of each record)"]
        image = row.pop(IMAGE_COLUMN, None) or {}
        # Parquet gives every row every column: an optional field a record did not have comes back as None.
        record = {k: v for k, v in row.items() if not (k in OPTIONAL_FIELDS and v is None)}
        records.append(record)
        problem = _image_problem(image, f"{root}: record {index} (id={_short(record.get('id'))})")
        if problem:
            errors.append(problem)
        needed += len(image.get("bytes") or b"")
        digest.update(str(record.get("image-path")).encode() + b"\0" + (image.get("bytes") or b""))
    folder = (cache_root() / digest.hexdigest()[:24]).resolve()
    if errors:
        return records, folder, errors
    require_free_space(folder, needed, f"extracting the images of {root}")
    for record, row in zip(records, rows(root), strict=True):
        rel, data = record.get("image-path"), row[IMAGE_COLUMN]["bytes"]
        if not isinstance(rel, str):
            continue  # parse_records names the bad field
        try:
            target = confined(folder, *rel.split("/"))
        except UnsafePathError:
            continue  # parse_records names it (the same rule as for a meta.json copy)
        if not target.is_file() or target.stat().st_size != len(data) or target.read_bytes() != data:
            with write_faults_named(target):
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = target.with_name(f".{target.name}.{os.getpid()}")
                tmp.write_bytes(data)
                os.replace(tmp, target)
    return records, folder, errors


def load_dataset_samples(root: Path, check_images: bool = True) -> list[Sample]:
    """Validate a datasets copy of the benchmark by the meta.json rules; raise DataValidationError with all problems."""
    records, folder, errors = extract_images(root)
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
