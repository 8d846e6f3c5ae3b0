"""The OmitI2V benchmark: typed records, validation, sources and content hashes."""

from .benchmark import (
    DATA_ROOT_ENV,
    HF_DATASET_ID,
    MINI_ROOT,
    Benchmark,
    DatasetUnavailableError,
    benchmark_from_config,
    load_benchmark,
    load_local,
)
from .records import MAIN_CATEGORIES, DataValidationError, Question, Sample

__all__ = [
    "Benchmark",
    "DATA_ROOT_ENV",
    "DataValidationError",
    "DatasetUnavailableError",
    "HF_DATASET_ID",
    "MAIN_CATEGORIES",
    "MINI_ROOT",
    "Question",
    "Sample",
    "benchmark_from_config",
    "load_benchmark",
    "load_local",
]
