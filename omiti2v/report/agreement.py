"""How much a table depends on its judge: agreement between VQA judges and which deltas survive a judge swap.

Inputs are plain judge records (one per question, as in judge.jsonl) and per-sample accuracies, so the same
functions serve one run re-judged by several judges and a whole table of runs.

- Question-level agreement: Cohen's kappa between two judges' parsed answers on the questions both answered,
  with a seeded percentile-bootstrap CI that resamples *samples* (a sample's questions share one video, so
  they are not independent draws).
- Bias: each judge's yes-rate beside the yes-rate of the expected answers on the same questions.
- Rankings: Kendall's tau between the orders two judges give the baselines of a table column.
- Deltas: for a "+AlignVid" row, the paired delta and its CI under each judge, and whether its sign and its
  significance (CI excluding 0) are the headline judge's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations

import numpy as np
from scipy import stats

from ..stats import N_RESAMPLES, paired_delta

QuestionKey = tuple[str, str]


def answers_by_question(records: Sequence[Mapping], mode: str | None = None) -> dict[QuestionKey, str]:
    """(sample, question) -> parsed answer from the latest error-free record (of `mode` when given)."""
    out: dict[QuestionKey, str] = {}
    for r in records:
        if r.get("error") is None and (mode is None or r.get("mode") == mode):
            out[(str(r["sample_id"]), str(r["question_id"]))] = str(r.get("answer"))
    return out


def cohen_kappa(a: Sequence[str], b: Sequence[str]) -> float | None:
    """Cohen's kappa of two label sequences; None when undefined (no items, or chance agreement is 1)."""
    if len(a) != len(b):
        raise ValueError(f"cohen_kappa: {len(a)} vs {len(b)} labels")
    if not a:
        return None
    labels = sorted(set(a) | set(b))
    index = {label: i for i, label in enumerate(labels)}
    table = np.zeros((len(labels), len(labels)))
    for x, y in zip(a, b, strict=True):
        table[index[x], index[y]] += 1
    n = table.sum()
    observed = np.trace(table) / n
    expected = float((table.sum(axis=1) / n) @ (table.sum(axis=0) / n))
    if expected >= 1.0:
        return None
    return float((observed - expected) / (1.0 - expected))


def kappa_cell(first: Mapping[QuestionKey, str], second: Mapping[QuestionKey, str], seed: int = 0,
               n_resamples: int = N_RESAMPLES) -> dict:
    """{"kappa", "agreement", "n", "ci95"} over the questions both judges answered; CI by resampling samples."""
    keys = sorted(first.keys() & second.keys())
    a = [first[k] for k in keys]
    b = [second[k] for k in keys]
    kappa = cohen_kappa(a, b)
    cell = {"kappa": kappa, "agreement": (100.0 * np.mean([x == y for x, y in zip(a, b, strict=True)]) if keys else None),
            "n": len(keys), "ci95": None}
    groups: dict[str, list[int]] = {}
    for i, (sample, _) in enumerate(keys):
        groups.setdefault(sample, []).append(i)
    members = list(groups.values())
    if kappa is None or len(members) < 2:
        return cell
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_resamples):
        picked = [i for g in rng.integers(0, len(members), len(members)) for i in members[g]]
        k = cohen_kappa([a[i] for i in picked], [b[i] for i in picked])
        if k is not None:
            draws.append(k)
    if draws:
        cell["ci95"] = [float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))]
    return cell


def yes_bias(answers: Mapping[QuestionKey, str], expected: Mapping[QuestionKey, str]) -> dict:
    """The judge's yes-rate beside the expected answers' yes-rate on the same questions, in percent."""
    keys = sorted(answers.keys() & expected.keys())
    if not keys:
        return {"n": 0, "yes_rate": None, "expected_yes_rate": None, "bias": None}
    judge = 100.0 * np.mean([answers[k] == "yes" for k in keys])
    truth = 100.0 * np.mean([expected[k] == "yes" for k in keys])
    return {"n": len(keys), "yes_rate": float(judge), "expected_yes_rate": float(truth), "bias": float(judge - truth)}


def rank_agreement(scores: Mapping[str, Mapping[str, float]]) -> list[dict]:
    """Kendall's tau between every pair of judges' scores of the same baselines (one table column)."""
    rows = []
    for first, second in combinations(sorted(scores), 2):
        common = sorted(scores[first].keys() & scores[second].keys())
        tau = p = None
        if len(common) >= 2:
            result = stats.kendalltau([scores[first][m] for m in common], [scores[second][m] for m in common])
            if np.isfinite(result.statistic):
                tau, p = float(result.statistic), float(result.pvalue)
        rows.append({"judges": (first, second), "n": len(common), "tau": tau, "p_value": p})
    return rows


def significant(cell: Mapping) -> bool:
    ci = cell.get("ci95")
    return bool(ci) and (ci[0] > 0 or ci[1] < 0)


def sign(value: float | None) -> int:
    return 0 if value is None or value == 0 else (1 if value > 0 else -1)


def delta_survival(per_judge: Mapping[str, tuple[Sequence[float], Sequence[float]]], headline: str,
                   seed: int = 0) -> dict:
    """Paired delta (treated − base, percent) per judge, and whether each judge keeps the headline's verdict.

    `per_judge[judge] = (base, treated)`: per-sample accuracies aligned by sample under that judge.
    A delta survives a judge when its sign and its significance are the headline judge's.
    """
    if headline not in per_judge:
        raise ValueError(f"delta_survival: headline judge {headline!r} not among {sorted(per_judge)}")
    cells = {judge: paired_delta(base, treated, seed) for judge, (base, treated) in per_judge.items()}
    ref = cells[headline]
    for cell in cells.values():
        cell["survives"] = (sign(cell["delta"]) == sign(ref["delta"])) and significant(cell) == significant(ref)
    return {"headline": headline, "judges": cells, "survives_all": all(c["survives"] for c in cells.values())}


def pairwise_report(answers: Mapping[str, Mapping[QuestionKey, str]], expected: Mapping[QuestionKey, str],
                    seed: int = 0) -> dict:
    """Per judge the yes-bias, per judge pair the kappa cell: the question-level part of the report."""
    return {
        "bias": {judge: yes_bias(a, expected) for judge, a in sorted(answers.items())},
        "kappa": [{"judges": (x, y), **kappa_cell(answers[x], answers[y], seed)}
                  for x, y in combinations(sorted(answers), 2)],
    }
