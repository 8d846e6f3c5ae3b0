"""Judge-sensitivity statistics against hand computation on constructed records."""

import numpy as np
import pytest

from omiti2v.report.agreement import (
    answers_by_question,
    cohen_kappa,
    delta_survival,
    kappa_cell,
    pairwise_report,
    rank_agreement,
    yes_bias,
)


def test_kappa_equals_the_hand_computed_value():
    a = ["yes", "yes", "no", "no", "yes", "no"]
    b = ["yes", "no", "no", "no", "yes", "yes"]
    # table yy=2 yn=1 ny=1 nn=2: p_o = 4/6, p_e = 0.5*0.5 + 0.5*0.5 = 0.5 -> kappa = (2/3 - 1/2) / (1/2) = 1/3
    assert cohen_kappa(a, b) == pytest.approx(1 / 3)
    assert cohen_kappa(a, a) == pytest.approx(1.0)
    # a third label ("unknown") enters the table like any other
    c = ["yes", "unknown", "no"]
    d = ["yes", "no", "no"]
    # rows: yes(1) unknown(1) no(1); cols: yes(1) no(2); p_o = 2/3; p_e = 1/3*1/3 + 1/3*2/3 = 1/3 -> kappa = 0.5
    assert cohen_kappa(c, d) == pytest.approx(0.5)
    assert cohen_kappa(["yes", "yes"], ["yes", "yes"]) is None  # chance agreement 1: undefined


def records(answers: dict, mode="parity"):
    return [{"sample_id": s, "question_id": q, "answer": a, "mode": mode, "error": None} for (s, q), a in answers.items()]


def test_kappa_cell_uses_common_questions_and_resamples_samples():
    first = {(f"s{i}", "q0"): ("yes" if i % 2 else "no") for i in range(20)}
    second = dict(first)
    second[("s0", "q0")] = "yes"  # one disagreement
    second[("extra", "q0")] = "yes"  # answered by one judge only: ignored
    cell = kappa_cell(first, second, seed=3, n_resamples=300)
    assert cell["n"] == 20
    assert cell["agreement"] == pytest.approx(95.0)
    assert cell["kappa"] == pytest.approx(cohen_kappa([first[k] for k in sorted(first)],
                                                      [second[k] for k in sorted(first)]))
    lo, hi = cell["ci95"]
    assert lo <= cell["kappa"] <= hi <= 1.0
    assert kappa_cell(first, second, seed=3, n_resamples=300) == cell  # seeded


def test_answers_by_question_skips_errors_and_other_modes():
    recs = records({("a", "1"): "yes"}) + records({("a", "1"): "no"}, mode="fast")
    recs.append({"sample_id": "b", "question_id": "1", "answer": "unknown", "mode": "parity", "error": "missing"})
    assert answers_by_question(recs, "parity") == {("a", "1"): "yes"}
    assert answers_by_question(recs, "fast") == {("a", "1"): "no"}


def test_yes_bias_is_judge_minus_expected_rate():
    answers = {("a", "1"): "yes", ("a", "2"): "yes", ("b", "1"): "no", ("b", "2"): "yes"}
    expected = {("a", "1"): "yes", ("a", "2"): "no", ("b", "1"): "no", ("b", "2"): "no"}
    bias = yes_bias(answers, expected)
    assert bias == {"n": 4, "yes_rate": 75.0, "expected_yes_rate": 25.0, "bias": 50.0}


def test_rank_agreement_matches_scipy_kendall_tau():
    from scipy.stats import kendalltau

    scores = {"qwen": {"wan": 70.0, "framepack": 60.0, "hunyuan": 55.0, "easy": 65.0},
              "intern": {"wan": 72.0, "framepack": 50.0, "hunyuan": 58.0, "easy": 61.0}}
    (row,) = rank_agreement(scores)
    models = sorted(scores["qwen"])
    expected = kendalltau([scores["intern"][m] for m in models], [scores["qwen"][m] for m in models]).statistic
    assert row["judges"] == ("intern", "qwen") and row["n"] == 4
    assert row["tau"] == pytest.approx(expected)
    # hand count: of the 6 pairs only (framepack, hunyuan) is discordant -> (5 - 1) / 6
    assert row["tau"] == pytest.approx(4 / 6)


def test_a_delta_whose_sign_flips_under_another_judge_does_not_survive():
    rng = np.random.default_rng(0)
    base = rng.uniform(0.3, 0.6, 40)
    per_judge = {
        "qwen": (base, base + 0.2),  # clear gain
        "intern": (base, base - 0.2),  # clear loss: the sign flips
        "qwen3": (base, base + 0.15 + rng.normal(0, 0.01, 40)),  # another clear gain
    }
    out = delta_survival(per_judge, headline="qwen", seed=1)
    judges = out["judges"]
    assert judges["qwen"]["delta"] == pytest.approx(20.0)
    assert judges["intern"]["delta"] == pytest.approx(-20.0)
    assert judges["qwen"]["survives"] and judges["qwen3"]["survives"]
    assert not judges["intern"]["survives"]
    assert out["survives_all"] is False
    # a gain that stays positive but loses significance does not survive either
    noisy = {"qwen": per_judge["qwen"], "weak": (base, base + rng.normal(0.0, 0.3, 40))}
    weak = delta_survival(noisy, headline="qwen", seed=1)["judges"]["weak"]
    lo, hi = weak["ci95"]
    assert lo < 0 < hi and not weak["survives"]
    with pytest.raises(ValueError, match="headline"):
        delta_survival(per_judge, headline="absent")


def test_pairwise_report_covers_every_pair():
    answers = {j: {("s", "q"): "yes", ("t", "q"): "no"} for j in ("a", "b", "c")}
    report = pairwise_report(answers, {("s", "q"): "yes", ("t", "q"): "yes"})
    assert [row["judges"] for row in report["kappa"]] == [("a", "b"), ("a", "c"), ("b", "c")]
    assert all(row["kappa"] == pytest.approx(1.0) for row in report["kappa"])
    assert report["bias"]["a"]["bias"] == pytest.approx(-50.0)
