"""Confidence intervals over samples: seeded percentile bootstrap (scipy.stats.bootstrap)."""

from __future__ import annotations

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
N_RESAMPLES = 2000


def bootstrap_ci(values, seed: int = 0, n_resamples: int = N_RESAMPLES, confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """95 % percentile-bootstrap CI of the mean; None when fewer than two values (no interval exists)."""
    x = np.asarray(values, dtype=float)
    if x.size < 2:
        return None
    if np.all(x == x[0]):
        return float(x[0]), float(x[0])
    res = stats.bootstrap(
        (x,), np.mean, n_resamples=n_resamples, confidence_level=confidence, method="percentile",
        rng=np.random.default_rng(seed), vectorized=True,
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def mean_cell(values, seed: int = 0, scale: float = 100.0) -> dict:
    """{"value", "n", "ci95"} for the mean of per-sample values, in percent by default."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return {"value": None, "n": 0, "ci95": None}
    ci = bootstrap_ci(x, seed)
    return {
        "value": float(x.mean() * scale),
        "n": int(x.size),
        "ci95": None if ci is None else [ci[0] * scale, ci[1] * scale],
    }
