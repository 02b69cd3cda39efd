"""The 2025–26 benchmarks' rules as pure functions: hand-checked cases, the orderings and ties the official
rules decide, and numbers the official repositories show.

Fixtures in tests/eval/data come from the official repositories (numbers only, no texts):
- judgebench_skywork_reward_llama31_8b.jsonl: ScalerLab/JudgeBench at e2c52c2, outputs/dataset=judgebench,
  response_model=gpt-4o-2024-05-13,judge_name=reward_model,judge_model=Skywork_Skywork-Reward-Llama-3.1-8B.jsonl
  (each pair's source, label, the two rewards and the judge's two decisions);
- rmb_armorm_idea_development.jsonl: Zhou-Zoey/RMB-Reward-Model-Benchmark at 2be3180,
  eval/result/ArmoRM-Llama3-8B-v0.1_result.json ([chosen_reward, reject_reward, is_correct] per pair).
"""

from __future__ import annotations

import json
import math
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest

from rmguard.eval import metrics as rm
from rmguard.eval.intervals import stratified_interval
from rmguard.eval.rewordbench import add_quotes, answer_header, punctuation_spaces, stress_test

DATA = Path(__file__).parent / "data"


# ----------------------------------------------------------------------------------------------- JudgeBench


@pytest.mark.parametrize(
    ("reward_a", "reward_b", "label", "both", "one"),
    [
        (2.0, 1.0, "A>B", 1, 1),
        (2.0, 1.0, "B>A", -1, -1),
        (1.0, 2.0, "B>A", 1, 1),
        # a tie of rewards: game 1 says B>A, game 2 (B, A) also says B>A, i.e. A>B once flipped back: net 0
        (1.5, 1.5, "A>B", 0, -1),
        (1.5, 1.5, "B>A", 0, 1),  # one order hands the tie to B, so it "wins" when B is the label
    ],
)
def test_judgebench_votes_in_both_orders_and_one(reward_a, reward_b, label, both, one):
    assert rm.judgebench_vote(reward_a, reward_b, label) == both
    assert rm.judgebench_vote(reward_a, reward_b, label, both_orders=False) == one


def test_judgebench_rejects_a_label_it_does_not_know():
    with pytest.raises(rm.MetricError, match="A=B"):
        rm.judgebench_vote(1.0, 2.0, "A=B")


def test_judgebench_micro_and_macro_by_hand():
    votes = [1, 1, -1, 0, 1, -1]
    sources = [
        "mmlu-pro-law",
        "mmlu-pro-math",
        "mmlu-pro-law",
        "livebench-math",
        "livecodebench",
        "livecodebench",
    ]
    scores = rm.judgebench_scores(votes, sources)
    assert scores["accuracy"] == pytest.approx(3 / 6)  # the tie is not correct
    assert scores["categories"] == {
        "mmlu-pro": pytest.approx(2 / 3),
        "livebench-math": 0.0,
        "livecodebench": 0.5,
    }
    assert scores["macro_accuracy"] == pytest.approx((2 / 3 + 0 + 0.5) / 3)
    assert scores["ties"] == 1


def _official_judgebench(pairs: list[dict], prefix: str) -> float:
    """compute_final_metrics of utils/metrics.py (reverse_order=True) on the judge's recorded decisions."""
    flip = {"A>B": "B>A", "B>A": "A>B"}
    chosen = [p for p in pairs if p["source"].startswith(prefix)]
    correct = 0
    for pair in chosen:
        decisions = [pair["decisions"][0], flip[pair["decisions"][1]]]
        counter = sum(1 if d == pair["label"] else -1 if d == flip[pair["label"]] else 0 for d in decisions)
        correct += counter > 0
    return 100 * correct / len(chosen)


def test_judgebench_reproduces_the_official_skywork_number_from_its_rewards():
    pairs = [json.loads(line) for line in (DATA / "judgebench_skywork_reward_llama31_8b.jsonl").open()]
    votes = [rm.judgebench_vote(p["scores"][0], p["scores"][1], p["label"]) for p in pairs]
    scores = rm.judgebench_scores(votes, [p["source"] for p in pairs])
    # the official script prints Overall 62.29 % for this judge (218 of 350 pairs)
    assert (
        100 * scores["accuracy"]
        == pytest.approx(_official_judgebench(pairs, ""))
        == pytest.approx(100 * 218 / 350)
    )
    for category in rm.JUDGEBENCH_CATEGORIES:
        assert 100 * scores["categories"][category] == pytest.approx(_official_judgebench(pairs, category))
    assert [round(100 * scores["categories"][c], 2) for c in rm.JUDGEBENCH_CATEGORIES] == [
        59.09,
        64.29,
        76.79,
        50.0,
    ]
    assert scores["macro_accuracy"] == pytest.approx((13 / 22 + 63 / 98 + 43 / 56 + 21 / 42) / 4)
    # the one pair with equal rewards (20.75, a livecodebench pair labelled A>B) is the one tie
    assert scores["ties"] == 1


# ----------------------------------------------------------------------------------------------- RMB


def test_rmb_best_of_n_needs_the_best_strictly_above_every_loser():
    assert rm.strictly_best(3.0, [1.0, 2.0])
    assert not rm.strictly_best(3.0, [1.0, 3.0])  # a tie with one loser is wrong
    assert not rm.strictly_best(2.0, [1.0, 2.5])
    assert rm.rmb_goal("BoN_set/Harmlessness/S1") == "Harmlessness"


def test_rmb_pairwise_reproduces_the_official_armorm_result():
    rows = [json.loads(line) for line in (DATA / "rmb_armorm_idea_development.jsonl").open()]
    ours = [rm.strictly_best(chosen, [rejected]) for chosen, rejected, _ in rows]
    assert ours == [bool(correct) for _, _, correct in rows]  # the official is_correct, ties (12) wrong
    assert sum(chosen == rejected for chosen, rejected, _ in rows) == 12
    assert np.mean(ours) == pytest.approx(675 / 849)  # the ACC my_run_rm.py printed: 0.7950530035335689


# ----------------------------------------------------------------------------------------------- PPE


def _best_of_k_by_enumeration(rewards, scores, k):
    """Every K-subset, ties broken uniformly: the definition the closed form must equal."""
    total = 0.0
    for subset in combinations(range(len(rewards)), k):
        top = max(rewards[i] for i in subset)
        tied = [scores[i] for i in subset if rewards[i] == top]
        total += sum(tied) / len(tied)
    return total / math.comb(len(rewards), k)


def test_best_of_k_curve_by_hand_and_by_enumeration():
    # rewards 3 > 2 = 2 > 1 with correctness 1, 1, 0, 0: K=2 picks right in 4.5 of the 6 subsets
    assert rm.best_of_k_curve([3, 1, 2, 2], [1, 0, 1, 0]).tolist() == [0.5, 0.75, 0.875, 1.0]
    rng = np.random.default_rng(0)
    for _ in range(20):
        rewards = rng.integers(0, 4, size=7).astype(float)
        scores = rng.integers(0, 2, size=7).astype(float)
        curve = rm.best_of_k_curve(rewards, scores)
        for k in range(1, 8):
            assert curve[k - 1] == pytest.approx(_best_of_k_by_enumeration(rewards, scores, k))


def test_best_of_k_with_all_rewards_tied_stays_at_the_mean():
    assert rm.best_of_k_curve([1, 1, 1, 1], [1, 0, 0, 0]).tolist() == [0.25] * 4


# ----------------------------------------------------------------------------------------------- reWordBench


def test_rewordbench_drop_over_shared_ids():
    original = {"a": 1.0, "b": 1.0, "c": 0.0, "d": 1.0}
    transformed = {"a": 0.0, "b": 1.0, "c": 0.0}
    assert rm.rewordbench_drop(original, transformed) == {
        "original": pytest.approx(2 / 3),
        "transformed": pytest.approx(1 / 3),
        "drop": pytest.approx(1 / 3),
        "pairs": 3,
    }
    with pytest.raises(rm.MetricError, match="no id"):
        rm.rewordbench_drop(original, {"z": 1.0})


def test_rule_based_transformations():
    assert add_quotes("Say hi.") == '"Say hi."'
    assert punctuation_spaces("Hi, you!  Fine.") == "Hi , you ! Fine ."
    assert stress_test("Q?") == "Q?" + " and true is true" * 5
    assert answer_header(r"so \boxed{\frac{1}{2}}.") == "so # Answer\n\n\\frac{1}{2}."
    assert answer_header("no box") == "no box"
    assert answer_header(r"\boxed{open") == r"\boxed{open"


# ----------------------------------------------------------------------------------------------- intervals


def test_stratified_interval_keeps_each_stratum_weight():
    values = [1, 1, 1, 1, 0, 0]
    strata = ["a", "a", "a", "a", "b", "b"]
    mean, low, high = stratified_interval(values, strata, resamples=200)
    assert (mean, low, high) == (0.5, 0.5, 0.5)  # no spread inside a stratum: no spread at all
    weighted, _, _ = stratified_interval(values, strata, weights={"a": 3, "b": 1})
    assert weighted == pytest.approx(0.75)
    mixed = stratified_interval([1, 0, 1, 0, 1], ["a", "a", "b", "b", "c"], resamples=500, seed=1)
    assert mixed[0] == pytest.approx((0.5 + 0.5 + 1) / 3) and mixed[1] < mixed[0] < mixed[2]
