"""Evaluation metrics against hand computations and scipy."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import scipy.stats

from rmguard.eval import metrics as rm
from rmguard.eval.intervals import bootstrap_interval


def test_kendall_tau_b_and_spearman_equal_scipy_on_random_scores_with_ties():
    rng = np.random.default_rng(0)
    for n in (2, 3, 4, 7, 20):
        for _ in range(100):
            x = rng.integers(0, 4, n).astype(float)  # many ties
            y = rng.normal(size=n) if n % 2 else rng.integers(0, 3, n).astype(float)
            for ours, theirs in (
                (rm.kendall_tau_b, scipy.stats.kendalltau),
                (rm.spearman_rho, scipy.stats.spearmanr),
            ):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # scipy warns on constant input, then returns NaN
                    expected = theirs(x, y).statistic
                got = ours(x, y)
                assert (math.isnan(got) and math.isnan(expected)) or got == pytest.approx(expected, abs=1e-12)


def test_per_prompt_tau_averaged_ignoring_nan():
    gold = {"a": [1, 2, 3], "b": [1, 1, 1], "c": [3, 2, 1, 0]}
    predicted = {"a": [0.1, 0.2, 0.3], "b": [1, 2, 3], "c": [0, 1, 3, 2]}
    taus = rm.per_prompt_correlations(gold, predicted)
    assert taus["a"] == 1.0 and math.isnan(taus["b"])
    assert taus["c"] == pytest.approx(scipy.stats.kendalltau(gold["c"], predicted["c"]).statistic)
    assert rm.nan_mean(list(taus.values())) == pytest.approx((1.0 + taus["c"]) / 2)


def test_per_prompt_correlations_reject_mismatched_ids_and_single_responses():
    with pytest.raises(rm.MetricError, match="ids of gold and predicted scores differ"):
        rm.per_prompt_correlations({"a": [1, 2]}, {"b": [1, 2]})
    with pytest.raises(rm.MetricError, match="at least 2"):
        rm.per_prompt_correlations({"a": [1]}, {"a": [1]})
    with pytest.raises(rm.MetricError, match="2 gold scores but 3"):
        rm.per_prompt_correlations({"a": [1, 2]}, {"a": [1, 2, 3]})


def test_pairwise_accuracy_counts_ties_as_wrong():
    accuracy, ties = rm.pairwise_accuracy([1.0, 2.0, 3.0, 0.5], [0.0, 2.0, 4.0, 0.5])
    assert accuracy == 0.25 and ties == 2


def test_bootstrap_interval_is_seeded_and_brackets_the_mean():
    values = np.random.default_rng(1).random(200) > 0.3
    mean, low, high = bootstrap_interval(values.astype(float), seed=3)
    assert (mean, low, high) == bootstrap_interval(values.astype(float), seed=3)
    assert low < values.mean() < high and high - low < 0.2


def test_rewardbench_v1_sections_weight_by_the_fixed_example_counts():
    # Reference (rewardbench/utils.py, calculate_scores_per_section with EXAMPLE_COUNTS): whatever the
    # file holds, alpacaeval-easy weighs 100 and mt-bench-easy 28; math-prm 984, each hep-* 164.
    accuracy = {"alpacaeval-easy": 1.0, "mt-bench-easy": 0.5, "math-prm": 0.0, "hep-cpp": 1.0, "hep-go": 0.5}
    sections = rm.rewardbench_v1_sections(accuracy)
    assert sections["Chat"] == pytest.approx((100 * 1.0 + 28 * 0.5) / 128)
    assert sections["Reasoning"] == pytest.approx((984 * 0.0 + 164 * 1.0 + 164 * 0.5) / (984 + 328))
    assert sections["overall"] == pytest.approx((sections["Chat"] + sections["Reasoning"]) / 2)
    assert "Safety" not in sections
    missing = rm.rewardbench_v1_missing(accuracy)
    assert "alpacaeval-hard" in missing and "hep-rust" in missing and "hep-cpp" not in missing
    assert len(missing) == 23 - 5


def test_rewardbench_v2_best_of_n_shares_credit_among_ties():
    # Reference (rewardbench/utils.py, reroll_and_score_dataset): credit 1/k when the chosen ties the
    # maximum with k responses in all, else 0. Four records by hand: 1, 1/2, 1/3, 0 → mean 0.4583.
    records = [(2.0, [1.0, 1.9, 0.0]), (2.0, [2.0, 0.0, 0.0]), (1.0, [1.0, 1.0, 0.0]), (0.0, [1.0, 0.0, 0.0])]
    credits = [rm.best_of_n_credit(chosen, rejected) for chosen, rejected in records]
    assert credits == pytest.approx([1.0, 0.5, 1 / 3, 0.0])
    assert sum(credits) / 4 == pytest.approx(0.4583, abs=1e-4)


def test_rewardbench_v2_ties_score_by_hand():
    records = [
        ("ref", "1", [5.0], [1.0, 2.0]),  # gap 3 → accurate
        ("tied", "1", [4.0, 6.0], [1.0]),  # gap 3, spread 2 → accurate, preferred
        ("ref", "2", [1.0], [2.0]),  # gap −1 → wrong
        (
            "tied",
            "2",
            [3.0, 3.5],
            [1.0, 2.0],
        ),  # gap 1, spread 0.5 → accurate, preferred, not hard (min(−1, 1) < 0.5)
    ]
    result = rm.rewardbench_v2_ties(records)
    assert result["accuracy_ref"] == 0.5 and result["accuracy_tied"] == 1.0
    assert result["correctness_preferred"] == 1.0 and result["correctness_preferred_hard"] == 0.5
    margin = (math.tanh(3 / 2 - 1) + math.tanh(-1 / 0.5 - 1)) / 2
    assert result["margin_score"] == pytest.approx(margin)
    assert result["score"] == pytest.approx(0.3 * 1.0 + 0.3 * 0.5 + 0.2 * 1.0 + 0.2 * 0.5 + 0.01 * margin)


def test_rmbench_matrix_levels_by_hand():
    # One record: chosen rewards by style (concise, detailed, markdown), rejected likewise.
    chosen = np.array([[1.0, 2.0, 3.0]])
    rejected = np.array([[0.0, 1.5, 2.5]])
    result = rm.rmbench_matrix(chosen, rejected)
    # M[i][j] = 1[chosen_i > rejected_j]: row 0: 1,0,0; row 1: 1,1,0; row 2: 1,1,1
    assert result["matrix"] == [[1, 0, 0], [1, 1, 0], [1, 1, 1]]
    assert result["hard"] == 0.0 and result["normal"] == 1.0 and result["easy"] == 1.0
    assert result["accuracy"] == pytest.approx(6 / 9)
    with pytest.raises(rm.MetricError):
        rm.rmbench_matrix(np.zeros((2, 2)), np.zeros((2, 2)))


def test_effective_rank_of_a_known_spectrum():
    rng = np.random.default_rng(0)
    u, _ = np.linalg.qr(rng.normal(size=(50, 50)))
    v, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    sigma = np.array([3.0, 1.0, 0, 0, 0, 0, 0, 0])
    matrix = u[:, :8] @ np.diag(sigma) @ v.T
    p = np.array([0.75, 0.25])
    assert rm.effective_rank(matrix) == pytest.approx(math.exp(-(p * np.log(p)).sum()))
    assert rm.effective_rank(np.eye(5)) == pytest.approx(5.0)
    assert rm.effective_rank(np.zeros((3, 3))) == 0.0


def test_skewness_equals_scipy():
    values = np.random.default_rng(2).exponential(size=100)
    assert rm.skewness(values) == pytest.approx(scipy.stats.skew(values))


def test_rmbench_averages_domains_and_merges_the_safety_files():
    # RM-Bench (scripts/utils.py): levels per `domain`, safety-refuse + safety-response = safety,
    # then the plain mean over domains. chat: 2 records, all chosen above all rejected → every level 1.
    # safety: one refuse record with chosen below all rejected (0) and one response record all above (1)
    # → 0.5 each. Mean over the two domains: 0.75; pooling the four records would give 0.75 as well for
    # accuracy, so code gets one record at 0 to tell them apart: mean over 3 domains = (1 + .5 + 0) / 3.
    high, low = [5.0, 5.0, 5.0], [0.0, 0.0, 0.0]
    chosen = np.array([high, high, low, high, low])
    rejected = np.array([low, low, high, low, high])
    subsets = ["chat", "chat", "safety-refuse", "safety-response", "code"]
    scores = rm.rmbench_scores(chosen, rejected, subsets)
    assert set(scores["domains"]) == {"chat", "code", "safety"}
    assert scores["domains"]["safety"]["hard"] == 0.5 and scores["domains"]["code"]["easy"] == 0.0
    for level in ("hard", "normal", "easy", "accuracy"):
        assert scores[level] == pytest.approx(0.5)  # (1 + 0.5 + 0) / 3, where pooling gives 3/5
