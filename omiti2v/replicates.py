"""Statistics of seed replicates: how much of a number, or of a gain, is seed noise.

A replicate group holds one value per (seed, sample): the same benchmark samples under S seeds. Seeds and samples
are crossed (every seed sees every sample), not nested, so the uncertainty of the grand mean has three parts,
Var = var_sample / n + var_seed / S + var_residual / (n S), which `variance_components` estimates by the
method of moments of the two-way layout without repeats.

The CI resamples both: a crossed two-level bootstrap (Owen 2007, "The pigeonhole bootstrap", Ann. Appl. Stat.)
draws S seeds and n samples with replacement and averages the drawn rows x drawn columns. The same sample draw
applies to every drawn seed because the replicates share their samples: drawing samples independently per seed
(a nested bootstrap) would divide the sample term by S, as if more seeds meant more images, and make the CI too
narrow. The crossed bootstrap slightly overstates the residual term (it counts var_residual / (n S) up to three
times), so it errs on the wide side; with few seeds its seed part is coarse (3 seeds give 10 distinct draws),
which is why the between-seed spread is reported beside it.

Per-question flips between two runs are tested with the exact McNemar test: under "no change" each discordant
question is equally likely to flip either way, so min(b, c) follows Binomial(b + c, 1/2).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from .stats import CONFIDENCE, N_RESAMPLES


def variance_components(values) -> dict[str, float]:
    """{"sample", "seed", "residual"} variances of a (seeds, samples) array, method of moments, floored at 0.

    E[MS_samples] = var_residual + S var_sample, E[MS_seeds] = var_residual + n var_seed, E[MS_residual] =
    var_residual (two-way random effects, one value per cell)."""
    y = np.asarray(values, dtype=float)
    seeds, samples = y.shape
    if seeds < 2 or samples < 2:
        raise ValueError(f"variance_components: need at least 2 seeds and 2 samples, got {seeds} x {samples}")
    grand = y.mean()
    seed_means, sample_means = y.mean(axis=1), y.mean(axis=0)
    ms_seed = samples * np.sum((seed_means - grand) ** 2) / (seeds - 1)
    ms_sample = seeds * np.sum((sample_means - grand) ** 2) / (samples - 1)
    residual = y - seed_means[:, None] - sample_means[None, :] + grand
    ms_residual = np.sum(residual ** 2) / ((seeds - 1) * (samples - 1))
    return {"sample": float(max(0.0, (ms_sample - ms_residual) / seeds)),
            "seed": float(max(0.0, (ms_seed - ms_residual) / samples)),
            "residual": float(ms_residual)}


def crossed_bootstrap_means(values, seed: int = 0, n_resamples: int = N_RESAMPLES) -> np.ndarray:
    """Means of `n_resamples` crossed draws: S seeds and n samples with replacement, one sample draw per resample
    shared by all its seeds. Drawn as multinomial counts: mean = seed_counts @ Y @ sample_counts / (S n)."""
    y = np.asarray(values, dtype=float)
    seeds, samples = y.shape
    rng = np.random.default_rng(seed)
    seed_counts = rng.multinomial(seeds, np.full(seeds, 1.0 / seeds), size=n_resamples)
    sample_counts = rng.multinomial(samples, np.full(samples, 1.0 / samples), size=n_resamples)
    return np.einsum("bs,sn,bn->b", seed_counts, y, sample_counts) / (seeds * samples)


def _percentile_ci(draws: np.ndarray, confidence: float) -> list[float]:
    tail = 100 * (1 - confidence) / 2
    return [float(np.percentile(draws, tail)), float(np.percentile(draws, 100 - tail))]


def replicate_cell(values, seed: int = 0, scale: float = 100.0, n_resamples: int = N_RESAMPLES,
                   confidence: float = CONFIDENCE) -> dict:
    """The cell of a (seeds, samples) array of per-sample values (0..1), in percent by default.

    value: the grand mean; per_seed: each seed's mean; seed_sd: their standard deviation (ddof 1), the spread a
    reader sees between re-runs; ci95: crossed two-level bootstrap; components: variance components in
    percent squared. Fewer than 2 seeds or samples: no CI and no components."""
    y = np.asarray(values, dtype=float)
    seeds, samples = y.shape
    per_seed = y.mean(axis=1) * scale if samples else np.full(seeds, np.nan)
    out = {"value": float(y.mean() * scale) if y.size else None, "n": int(samples), "seeds": int(seeds),
           "per_seed": [float(v) for v in per_seed] if samples else [],
           "seed_sd": float(np.std(per_seed, ddof=1)) if seeds >= 2 and samples else None,
           "ci95": None, "components": None}
    if seeds >= 2 and samples >= 2:
        out["ci95"] = _percentile_ci(crossed_bootstrap_means(y, seed, n_resamples) * scale, confidence)
        out["components"] = {k: v * scale ** 2 for k, v in variance_components(y).items()}
    return out


def replicate_delta(base, treated, seed: int = 0, scale: float = 100.0, n_resamples: int = N_RESAMPLES,
                    confidence: float = CONFIDENCE) -> dict:
    """treated - base on aligned (seeds, samples) arrays (the same seed k and sample in both): the cell of the
    per-(seed, sample) differences plus a two-sided p-value, twice the bootstrap mass on the far side of 0
    (the test dual to the percentile CI); None without a CI."""
    a, b = np.asarray(base, dtype=float), np.asarray(treated, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"replicate_delta: base and treated differ in shape ({a.shape} vs {b.shape})")
    diff = b - a
    out = replicate_cell(diff, seed, scale, n_resamples, confidence)
    out["p_value"] = None
    if out["ci95"] is not None:
        draws = crossed_bootstrap_means(diff, seed, n_resamples)
        if np.all(draws == draws[0]):
            out["p_value"] = 1.0 if draws[0] == 0 else 1.0 / n_resamples
        else:
            out["p_value"] = float(min(1.0, 2 * min(np.mean(draws <= 0), np.mean(draws >= 0))))
    return out


def mcnemar_exact(wrong_to_right: int, right_to_wrong: int) -> float:
    """Two-sided exact McNemar p: 2 P(X <= min(b, c)) for X ~ Binomial(b + c, 1/2), at most 1; 1 with no flips."""
    b, c = int(wrong_to_right), int(right_to_wrong)
    if b + c == 0:
        return 1.0
    return float(min(1.0, 2.0 * stats.binom.cdf(min(b, c), b + c, 0.5)))


def question_flips(base: pd.Series, treated: pd.Series) -> dict:
    """Flips between two runs' per-question verdicts (boolean Series indexed by question), on the questions both
    answered: {"n", "wrong_to_right", "right_to_wrong", "p_value"} (exact McNemar)."""
    joined = pd.concat({"base": base, "treated": treated}, axis=1, join="inner").dropna().astype(bool)
    gained = int((~joined["base"] & joined["treated"]).sum())
    lost = int((joined["base"] & ~joined["treated"]).sum())
    return {"n": len(joined), "wrong_to_right": gained, "right_to_wrong": lost, "p_value": mcnemar_exact(gained, lost)}
