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


def paired_delta(base, treated, seed: int = 0, n_resamples: int = N_RESAMPLES, confidence: float = CONFIDENCE,
                 scale: float = 100.0) -> dict:
    """{"delta", "n", "ci95", "p_value"} for mean(treated - base) over the same samples, in percent.

    `base` and `treated` are aligned per sample (same order, same ids). The CI is a seeded paired percentile
    bootstrap (samples resampled together); the two-sided p-value is the paired sign-flip permutation test
    (exact when 2**n <= n_resamples), which tests "no change" without assuming normal differences.
    """
    a = np.asarray(base, dtype=float)
    b = np.asarray(treated, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired_delta: base and treated differ in length ({a.size} vs {b.size})")
    if a.size == 0:
        return {"delta": None, "n": 0, "ci95": None, "p_value": None}
    diff = b - a
    out = {"delta": float(diff.mean() * scale), "n": int(diff.size), "ci95": None, "p_value": None}
    if diff.size < 2:
        return out
    if np.all(diff == diff[0]):
        out["ci95"] = [float(diff[0] * scale)] * 2
        out["p_value"] = 1.0 if diff[0] == 0 else float(2.0 ** (1 - diff.size))
        return out

    def mean_difference(x, y, axis=-1):
        return np.mean(x - y, axis=axis)

    res = stats.bootstrap(
        (b, a), mean_difference, paired=True, n_resamples=n_resamples, confidence_level=confidence,
        method="percentile", rng=np.random.default_rng(seed), vectorized=True,
    )
    out["ci95"] = [float(res.confidence_interval.low * scale), float(res.confidence_interval.high * scale)]
    test = stats.permutation_test(
        (b, a), mean_difference, permutation_type="samples", n_resamples=n_resamples,
        alternative="two-sided", rng=np.random.default_rng(seed), vectorized=True,
    )
    out["p_value"] = float(min(1.0, test.pvalue))
    return out
