"""Seed-replicate statistics: variance components and the crossed bootstrap against a simulation with known
variances, and the exact McNemar test against scipy's binomial test."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from omiti2v.replicates import (
    crossed_bootstrap_means,
    mcnemar_exact,
    question_flips,
    replicate_cell,
    replicate_delta,
    variance_components,
)

SAMPLE_SD, SEED_SD, RESIDUAL_SD = 0.20, 0.05, 0.10


def simulate(seeds: int, samples: int, rng: np.random.Generator) -> np.ndarray:
    """Y[s, i] = 0.6 + a_i + b_s + e_si with independent normal effects of known variances."""
    return (0.6 + rng.normal(0, SAMPLE_SD, samples)[None, :] + rng.normal(0, SEED_SD, seeds)[:, None]
            + rng.normal(0, RESIDUAL_SD, (seeds, samples)))


def test_variance_components_recover_the_simulated_variances():
    """200 seeds x 1000 samples: the sample and residual variances come back within 10 %, the seed variance
    (estimated from 200 seed means, relative standard error sqrt(2/199) = 10 %) within 30 %."""
    got = variance_components(simulate(200, 1000, np.random.default_rng(1)))
    assert got["sample"] == pytest.approx(SAMPLE_SD ** 2, rel=0.10)
    assert got["seed"] == pytest.approx(SEED_SD ** 2, rel=0.30)
    assert got["residual"] == pytest.approx(RESIDUAL_SD ** 2, rel=0.10)
    # Without a seed effect the estimate is (near) zero, never negative.
    flat = np.random.default_rng(2).normal(0, 1, (1, 500)) + np.random.default_rng(3).normal(0, 0.1, (20, 500))
    assert 0 <= variance_components(flat)["seed"] < 1e-3


def test_crossed_bootstrap_variance_matches_the_two_way_formula():
    """The crossed bootstrap's variance of the mean is var_sample/n + var_seed/S + 3 var_residual/(n S) (true
    variance plus twice the residual term, Owen 2007) within 25 % (4000 resamples, 30 seeds); a bootstrap over
    samples only misses the seed term."""
    seeds, samples = 30, 300
    y = simulate(seeds, samples, np.random.default_rng(4))
    expected = SAMPLE_SD ** 2 / samples + SEED_SD ** 2 / seeds + 3 * RESIDUAL_SD ** 2 / (samples * seeds)
    draws = crossed_bootstrap_means(y, seed=0, n_resamples=4000)
    assert draws.var() == pytest.approx(expected, rel=0.25)
    rng = np.random.default_rng(0)
    samples_only = np.array([y[:, rng.integers(0, samples, samples)].mean() for _ in range(1000)])
    assert samples_only.var() == pytest.approx(SAMPLE_SD ** 2 / samples + RESIDUAL_SD ** 2 / (samples * seeds), rel=0.25)
    assert samples_only.var() < 0.75 * draws.var()


def test_replicate_cell_and_delta():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, (3, 50)).astype(float)
    cell = replicate_cell(y, seed=0)
    assert cell["value"] == pytest.approx(100 * y.mean())
    assert cell["per_seed"] == pytest.approx(list(100 * y.mean(axis=1)))
    assert cell["seed_sd"] == pytest.approx(np.std(100 * y.mean(axis=1), ddof=1))
    assert cell["n"] == 50 and cell["seeds"] == 3 and cell["ci95"][0] <= cell["value"] <= cell["ci95"][1]
    single = replicate_cell(y[:1])
    assert single["ci95"] is None and single["seed_sd"] is None and single["value"] == pytest.approx(100 * y[0].mean())
    shifted = replicate_delta(y * 0.5, y * 0.5 + 0.2, seed=0)
    assert shifted["value"] == pytest.approx(20.0) and shifted["p_value"] < 0.01
    noise = replicate_delta(y, np.clip(y + rng.normal(0, 0.01, y.shape), 0, 1), seed=0)
    assert noise["p_value"] > 0.05 and noise["ci95"][0] < 0 < noise["ci95"][1]
    assert replicate_delta(y, y)["p_value"] == 1.0
    with pytest.raises(ValueError, match="shape"):
        replicate_delta(y, y[:2])


@pytest.mark.parametrize(("gained", "lost"), [(9, 2), (2, 9), (15, 14), (0, 6), (40, 21), (1, 0)])
def test_mcnemar_equals_scipys_exact_binomial_test(gained, lost):
    assert mcnemar_exact(gained, lost) == pytest.approx(stats.binomtest(gained, gained + lost, 0.5).pvalue)


def test_question_flips_on_a_hand_written_table():
    """Six questions answered by both runs: 3 wrong->right, 1 right->wrong, 2 unchanged; q7 only in one run."""
    index = [("s0", "q1"), ("s0", "q2"), ("s1", "q1"), ("s1", "q2"), ("s2", "q1"), ("s2", "q2")]
    base = pd.Series([False, False, False, True, True, False], index=pd.MultiIndex.from_tuples(index))
    treated = pd.Series([True, True, True, False, True, False], index=pd.MultiIndex.from_tuples(index))
    treated[("s3", "q7")] = True
    flips = question_flips(base, treated)
    assert flips == {"n": 6, "wrong_to_right": 3, "right_to_wrong": 1,
                     "p_value": pytest.approx(stats.binomtest(1, 4, 0.5).pvalue)}
    assert mcnemar_exact(0, 0) == 1.0
