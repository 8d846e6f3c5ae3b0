"""paired_delta: the paired bootstrap CI and sign-flip p-value, checked against scipy.stats directly."""

import numpy as np
import pytest
from scipy import stats

from omiti2v.stats import bootstrap_ci, mean_cell, paired_delta


def test_paired_delta_matches_scipy():
    rng = np.random.default_rng(3)
    base = rng.integers(0, 2, 40).astype(float)
    treated = np.clip(base + rng.integers(-1, 2, 40), 0, 1)
    out = paired_delta(base, treated, seed=7)
    diff = treated - base
    assert out["delta"] == pytest.approx(100 * diff.mean())
    assert out["n"] == 40
    ref = stats.bootstrap((treated, base), lambda x, y, axis=-1: np.mean(x - y, axis=axis), paired=True,
                          n_resamples=2000, method="percentile", rng=np.random.default_rng(7), vectorized=True)
    assert out["ci95"] == pytest.approx([100 * ref.confidence_interval.low, 100 * ref.confidence_interval.high])
    perm = stats.permutation_test((treated, base), lambda x, y, axis=-1: np.mean(x - y, axis=axis),
                                  permutation_type="samples", n_resamples=2000, rng=np.random.default_rng(7),
                                  vectorized=True)
    assert out["p_value"] == pytest.approx(perm.pvalue)


def test_paired_delta_detects_a_real_shift_and_not_a_null_one():
    rng = np.random.default_rng(0)
    base = rng.uniform(0, 1, 60)
    assert paired_delta(base, base + 0.2, seed=0)["p_value"] < 1e-3  # constant shift: exact p 2^(1-n)
    noise = base + rng.normal(0, 0.05, 60)
    out = paired_delta(base, noise, seed=0)
    assert out["p_value"] > 0.05 and out["ci95"][0] < 0 < out["ci95"][1]
    # exact permutation for small n: 4 pairs all improving -> p = 2 / 16
    assert paired_delta([0, 0, 0, 0], [1, 0.5, 1, 0.25], seed=0)["p_value"] == pytest.approx(0.125)


def test_paired_delta_edge_cases():
    assert paired_delta([], []) == {"delta": None, "n": 0, "ci95": None, "p_value": None}
    assert paired_delta([0.5], [1.0]) == {"delta": 50.0, "n": 1, "ci95": None, "p_value": None}
    same = paired_delta([0.2, 0.4, 0.9], [0.2, 0.4, 0.9])
    assert same["delta"] == 0 and same["ci95"] == [0, 0] and same["p_value"] == 1.0
    with pytest.raises(ValueError, match="differ in length"):
        paired_delta([1, 2], [1])


def test_existing_functions_unchanged():
    x = np.array([0.0, 1.0, 1.0, 0.5, 0.25])
    ref = stats.bootstrap((x,), np.mean, n_resamples=2000, method="percentile", rng=np.random.default_rng(1))
    assert bootstrap_ci(x, 1) == pytest.approx((ref.confidence_interval.low, ref.confidence_interval.high))
    assert mean_cell(x, 1)["value"] == pytest.approx(55.0) and mean_cell(x, 1)["n"] == 5
