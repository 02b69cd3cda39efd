"""The study's analysis (overopt/study/analysis.py) on small worlds whose answers are known by hand."""

from __future__ import annotations

import numpy as np
import pytest

from rmguard.eval.eval_sets import EvalSet
from rmguard.eval.latent import outlier_rate
from rmguard.overopt.bon_math import log_spaced
from rmguard.overopt.study.analysis import (
    BonPool,
    Member,
    World,
    analyse,
    combine,
    latent_outliers,
    norm_dispersion,
    primary_family,
)
from rmguard.overopt.study.statistics import adjust_family, holm


def _sets(rng: np.random.Generator) -> list[EvalSet]:
    """An in-domain pairs file (chosen first in each pair) and a shifted rankings file with gold scores."""
    pairs = EvalSet("val1_in_domain", "-", "pairs")
    for k in range(30):
        pairs.add(f"p{k}", ["good", "bad"], f"p{k}")
    ranking = EvalSet("val2_prompt_disjoint", "-", "rankings")
    for k in range(12):
        ranking.add(f"q{k}", ["a", "b", "c"], f"q{k}")
        ranking.gold.append(list(rng.permutation(3).astype(float)))
    return [pairs, ranking]


def _member(sets: list[EvalSet], sign: float, rng: np.random.Generator, bon: np.ndarray) -> Member:
    """A proxy that ranks the pairs right with ``sign`` = 1 (wrong with −1), the rankings by their gold."""
    pairs, ranking = sets
    rewards = np.tile([sign, -sign], 30) + rng.normal(0, 0.01, 60)
    tau = np.concatenate([g for g in ranking.gold]) * sign
    norms = rng.normal(1.0, 0.1 if sign > 0 else 0.3, 60)
    files = {pairs.name: (rewards, norms), ranking.name: (tau, rng.normal(1, 0.2, len(tau)))}
    return Member(files, bon, -2.0 - 0.1 * sign)


def _worlds(seeds: int = 4) -> tuple[list[World], BonPool]:
    rng = np.random.default_rng(0)
    gold = rng.random((10, 16))
    bon = BonPool([], [], [], rng.integers(5, 50, (10, 16)).astype(float), gold)
    worlds = []
    for seed in range(seeds):
        sets = _sets(rng)
        members = {
            "bt": _member(sets, -1.0, rng, rng.random((10, 16))),
            "good": _member(sets, 1.0, rng, gold + rng.normal(0, 0.01, gold.shape)),
        }
        worlds.append(World(seed, sets, members, lm_logprob_start=-3.0))
    return worlds, bon


def test_a_perfect_proxy_against_a_wrong_one():
    worlds, bon = _worlds()
    summary, curves = analyse(worlds, bon, ["bt", "good"], "bt", max_n=8)
    good, bt = summary["objectives"]["good"], summary["objectives"]["bt"]
    assert good["in_domain_accuracy"] == 1.0 and bt["in_domain_accuracy"] == 0.0
    assert good["scenarios"]["val2_prompt_disjoint"]["mean"] == pytest.approx(1.0)
    assert curves.ns == log_spaced(8) and summary["best_of_n"]["ns"] == log_spaced(8)
    # the gold picked by a selector equal to the gold rises with n: no drop, Gao claims no peak
    assert not good["gold_drop_resolved"] and not good["gao_fit"]["turns"]
    assert good["lm_logprob"]["start"] == -3.0 and good["lm_logprob"]["end"] == pytest.approx(-2.1)
    assert good["lm_logprob"]["per_seed_end"] == pytest.approx([-2.1] * 4)
    difference = summary["paired_differences"]["good − bt"]
    accuracy = difference["in_domain_accuracy"]
    assert accuracy["mean"] == 1.0 and accuracy["resolved"] and accuracy["p_adjusted"] < 0.05
    # the wrong proxy's ‖h‖ spreads three times as much: per split, a resolved negative difference
    assert difference["hidden_norm_std"]["val1_in_domain"]["mean"] < -0.1
    assert summary["primary_endpoint"] == {
        "n": 8,
        "kl": pytest.approx(summary["best_of_n"]["kl"][-1]),
        "metrics": [
            "gold_at_max_n",
            "gold_drop",
            "in_domain_accuracy",
            "shifted_tau_mean",
            "hidden_norm_std",
        ],
        "baseline": "bt",
    }


def test_the_primary_family_is_adjusted_together_and_the_rest_is_not():
    worlds, bon = _worlds()
    summary, _ = analyse(worlds, bon, ["bt", "good"], "bt", max_n=8, primary_metrics=["in_domain_accuracy"])
    difference = summary["paired_differences"]["good − bt"]
    assert difference["in_domain_accuracy"]["p_adjusted"] is not None
    assert "p_adjusted" not in difference["gold_at_max_n"]  # secondary: its interval's label only
    assert summary["objectives"]["good"]["gold_drop_p_adjusted"] is None
    entries = [{"p_value": p} for p in (0.01, 0.04, 0.03, float("nan"))]
    adjust_family(entries)
    # m = 4 (a NaN comparison still counts): 0.01·4, max(0.04, 0.03·3), max(0.09, 0.04·2)
    assert [e["p_adjusted"] for e in entries[:3]] == pytest.approx([0.04, 0.09, 0.09])
    assert [e["resolved"] for e in entries] == [True, False, False, False]


def test_primary_family_takes_drops_and_each_splits_norm():
    drops = {"a": {"mean": 1}, "b": {"mean": 2}}
    differences = {
        "a − b": {"gold_drop": {"mean": 3}, "hidden_norm_std": {"x": {"mean": 4}, "y": {"mean": 5}}}
    }
    family = primary_family(drops, differences, drops, ["gold_drop", "hidden_norm_std"])
    assert [e["mean"] for e in family] == [1, 2, 3, 4, 5]
    assert primary_family(drops, differences, drops, ["in_domain_accuracy"]) == []


def test_holm_by_hand():
    # sorted 0.01, 0.02, 0.04 of m = 3: 0.03, max(0.03, 0.04), max(0.04, 0.04)
    assert holm([0.04, 0.01, 0.02]) == pytest.approx([0.04, 0.03, 0.04])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])


def test_combine_standardizes_each_member_before_the_ensemble():
    values = np.array([1.0, 2.0, 3.0, 4.0])
    member = Member({"f": (values[:2], None)}, values[2:].reshape(1, 2))
    scaled = Member({"f": (10 * values[:2] + 5, None)}, (10 * values[2:] + 5).reshape(1, 2))
    combined = combine([member, scaled], "mean")
    z = (values - values.mean()) / values.std()
    assert np.allclose(combined.files["f"][0], z[:2]) and np.allclose(combined.bon.ravel(), z[2:])


def test_norm_dispersion_is_the_std_per_seed_and_split():
    worlds = [{"n": {"f": np.array([1.0, 3.0])}}, {"n": {"f": np.array([2.0, 2.0, 2.0])}}]
    result = norm_dispersion(worlds, lambda w: w["n"])
    assert result["f"]["per_seed"] == [1.0, 0.0] and result["f"]["mean"] == 0.5


def _entry(mean: float, resolved: bool) -> dict:
    return {
        "mean": mean,
        "ci": [mean - 0.01, mean + 0.01],
        "mde": 0.02,
        "p_value": 0.01,
        "p_adjusted": 0.03,
        "resolved": resolved,
    }


def test_headline_gold_sentence_reads_as_english() -> None:
    from rmguard.overopt.study.headline import _gold_sentence

    h = {
        "bon_max_n": 10,
        "paired_differences": {
            "odin − bt": {"gold_at_max_n": _entry(-0.13, True)},
            "grm − bt": {"gold_at_max_n": _entry(-0.05, True)},
            "bsr − bt": {"gold_at_max_n": _entry(0.004, False)},
        },
    }
    assert _gold_sentence(h) == (
        "ODIN (quality head) and GRM (SFT reg.) lose gold against BT at n = 10: "
        "ODIN (quality head) -0.130 (adjusted p 0.03); GRM (SFT reg.) -0.050 (adjusted p 0.03). "
        "No resolved difference in gold against BT at n = 10 for the other rows: BSR λ=1e-3 +0.004 (MDE 0.020)."
    )
    h["paired_differences"] = {"bsr − bt": {"gold_at_max_n": _entry(0.03, True)}}
    assert _gold_sentence(h) == "BSR λ=1e-3 gains gold against BT at n = 10: +0.030 (adjusted p 0.03)."
    h["paired_differences"] = {"bsr − bt": {"gold_at_max_n": _entry(0.004, False)}}
    assert _gold_sentence(h) == (
        "No resolved difference in gold against BT at n = 10 for any row: BSR λ=1e-3 +0.004 (MDE 0.020)."
    )


def test_best_of_n_to_256_on_512_samples_per_prompt():
    """The power study's Best-of-N (40 prompts × 512 samples, n up to 256) on a synthetic pool: a log-spaced
    grid ending at 256 (KL 4.55 nats); a selector equal to the gold picks, at every n, the expected maximum
    of n of the ranks 1…N drawn without replacement, n(N + 1)/(n + 1) (here gold = rank / N); a selector
    blind to the gold keeps the pool's mean gold at every n (within 3.5 SE at n = 256)."""
    rng = np.random.default_rng(1)
    prompts, samples = 40, 512
    gold = np.stack([rng.permutation(samples) + 1.0 for _ in range(prompts)]) / samples
    bon = BonPool([], [], [], rng.integers(5, 64, gold.shape).astype(float), gold)
    worlds = []
    for seed in range(2):
        sets = _sets(rng)
        members = {
            "bt": _member(sets, -1.0, rng, rng.random(gold.shape)),
            "good": _member(sets, 1.0, rng, gold),
        }
        worlds.append(World(seed, sets, members, lm_logprob_start=-3.0))
    summary, curves = analyse(worlds, bon, ["bt", "good"], "bt", max_n=256)
    ns = summary["best_of_n"]["ns"]
    assert ns == log_spaced(256) and ns[-1] == 256 and len(ns) <= 20
    assert summary["best_of_n"]["kl"][-1] == pytest.approx(np.log(256) - 255 / 256)
    good = [row["mean"] for row in curves.curves["good"]["gold"]]
    assert good == pytest.approx([n * (samples + 1) / (n + 1) / samples for n in ns])
    assert summary["objectives"]["good"]["gold_at_max_n"] == pytest.approx(256 * 513 / 257 / 512)
    blind = [row["mean"] for row in curves.curves["bt"]["gold"]]
    assert np.abs(np.array(blind) - gold.mean()).max() < 0.08 and blind[0] == pytest.approx(gold.mean())
    assert not summary["objectives"]["good"]["gold_drop_resolved"]
    # the drop's power under the alternative, at Holm's most lenient step (95 %) and its strictest (α/m)
    power = summary["objectives"]["bt"]["gold_drop_power"]
    assert 0 <= power["power_holm_strictest"] <= power["power"] <= 1 and power["alternative"] == 0.02
    # m = 8: two drops, good − bt in four metrics and in ‖h‖ std on each of the two splits
    assert power["strictest_level"] == pytest.approx(1 - 0.05 / 8)


def test_latent_outliers_of_the_picks_by_hand():
    """InfoRM's diagnostic: at n = N the rate is outlier_rate of the proxy's top pick per prompt against
    the whole pool's latents; at n = 1 it is the pool's own rate; a proxy that favours planted outliers
    has a resolved rise, and a row without latents has no entry."""
    rng = np.random.default_rng(1)
    prompts, samples, dim = 12, 8, 3
    worlds = []
    for seed in range(3):
        latents = rng.normal(0, 1, (prompts, samples, dim))
        latents[:4, -1] += 8.0  # 4 of the pool's 96 latents lie far out, the proxy's favourites
        rewards = rng.normal(0, 1, (prompts, samples))
        rewards[:4, -1] = 10.0
        members = {"inform": Member({}, rewards, latents=latents), "bt": Member({}, rewards)}
        worlds.append(World(seed, [], members))
    entry = latent_outliers(worlds, "inform", [1, samples])["latent_outliers"]
    flat_latents = [w.members["inform"].latents.reshape(-1, dim) for w in worlds]
    picks = [
        w.members["inform"].latents[np.arange(prompts), w.members["inform"].bon.argmax(axis=1)]
        for w in worlds
    ]
    at_n = np.mean([outlier_rate(f, p) for f, p in zip(flat_latents, picks)])
    at_1 = np.mean([outlier_rate(f, f) for f in flat_latents])
    assert entry["rate"][1]["mean"] == pytest.approx(at_n) and entry["rate"][0]["mean"] == pytest.approx(at_1)
    assert entry["rise"]["mean"] == pytest.approx(at_n - at_1) and entry["rise"]["resolved"]
    assert at_n > 0.3 and at_1 < 0.1
    assert (entry["reference_latents"], entry["latent_dim"]) == (prompts * samples, dim)
    assert latent_outliers(worlds, "bt", [1, samples]) == {}
