"""The study's statistics on synthetic data with known answers: power, the cross-fitted drop, Gao's fit."""

from __future__ import annotations

import numpy as np
import pytest

from rmguard.overopt.bon_math import kl_bon
from rmguard.overopt.study.statistics import (
    adjust_family,
    cross_fitted_drops,
    describe,
    drop_power,
    gao_fit_intervals,
    hierarchical_interval,
    minimum_detectable_effect,
    resolved,
    with_drop,
)


def test_minimum_detectable_effect_by_hand_and_from_the_bootstrap():
    assert minimum_detectable_effect(1.0) == pytest.approx(1.959964 + 0.841621, abs=1e-5)
    assert minimum_detectable_effect(0.5, level=0.9, power=0.5) == pytest.approx(0.5 * 1.644854, abs=1e-5)
    # one seed of 400 units: the mean's SE is s/√400, so the MDE is 2.80 · s / 20
    units = np.random.default_rng(1).normal(0, 1, 400)
    result = hierarchical_interval([units])
    assert result["mde"] == pytest.approx(2.8016 * units.std() / 20, rel=0.05)
    assert resolved([0.1, 0.2]) and resolved([-0.3, -0.1]) and not resolved([-0.1, 0.2])


def test_hierarchical_interval_carries_the_seed_spread():
    rng = np.random.default_rng(0)
    offsets = rng.normal(0, 0.5, 8)  # seed effects far larger than the units' noise
    per_seed = [o + rng.normal(0, 0.1, n) for o, n in zip(offsets, [30, 40, 50, 30, 40, 50, 30, 45])]
    result = hierarchical_interval(per_seed)
    assert result["mean"] == pytest.approx(np.mean([v.mean() for v in per_seed]))
    # the seed level dominates: SE ≈ sd(seed means)/√8, where the units alone would give 0.1/√315 = 0.006
    means = np.array([v.mean() for v in per_seed])
    assert (
        result["se"] == pytest.approx(means.std() / np.sqrt(8), rel=0.2)
        and result["ci"][0] < result["mean"] < result["ci"][1]
    )


def _curves(gains, seeds=6, prompts=120, noise=0.15, seed=0):
    rng = np.random.default_rng(seed)
    return np.asarray(gains)[None, None, :] + rng.normal(0, noise, (seeds, prompts, len(gains)))


def test_cross_fitted_drop_finds_a_known_drop_and_none_on_a_flat_curve():
    dropping = _curves([0.0, 0.05, 0.10, 0.12, 0.10, 0.07, 0.04])  # peak 0.12, end 0.04: drop 0.08
    flat = _curves([0.0, 0.05, 0.10, 0.12, 0.12, 0.12, 0.12], seed=1)
    points, replicates = cross_fitted_drops([dropping, flat], resamples=400)
    drop, none = describe(points[0], replicates[:, 0]), describe(points[1], replicates[:, 1])
    assert drop["mean"] == pytest.approx(0.08, abs=0.02) and drop["resolved"]
    assert none["ci"][0] < 0 < none["ci"][1] and not none["resolved"]
    # picking the peak on the same prompts it is judged on would find a positive "drop" on the flat curve
    mean = flat.mean(axis=(0, 1))
    assert mean.max() - mean[-1] >= 0 and abs(none["mean"]) < mean.max() - mean[-1] + 0.01


def test_gao_fit_intervals_cover_known_alpha_and_beta():
    ns = [1, 2, 4, 8, 16, 32, 64]
    d = np.sqrt([kl_bon(n) for n in ns])
    alpha, beta = 0.12, 0.05  # peak at d = 1.2 (KL 1.44), inside the measured range (KL up to 3.2)
    fit = gao_fit_intervals(
        [kl_bon(n) for n in ns], _curves(d * (alpha - beta * d), noise=0.1), resamples=500
    )
    assert fit["alpha"]["ci"][0] <= alpha <= fit["alpha"]["ci"][1]
    assert fit["beta"]["ci"][0] <= beta <= fit["beta"]["ci"][1] and fit["turns"]
    assert fit["peak_kl"]["ci"][0] <= 1.44 <= fit["peak_kl"]["ci"][1]
    rising = gao_fit_intervals([kl_bon(n) for n in ns], _curves(0.05 * d, noise=0.1, seed=2), resamples=500)
    assert not rising["turns"] and rising["peak_kl"] is None and rising["peak_gold"] is None


def test_crossed_units_keep_a_shared_unit_effect_in_the_interval():
    rng = np.random.default_rng(4)
    shared = rng.normal(0, 1, 50)  # each prompt's effect, the same in every seed
    per_seed = [shared + rng.normal(0, 0.05, 50) for _ in range(10)]
    nested, crossed = hierarchical_interval(per_seed), hierarchical_interval(per_seed, crossed=True)
    assert crossed["se"] == pytest.approx(shared.std() / np.sqrt(50), rel=0.2)  # the prompts' SE
    assert nested["se"] < crossed["se"] / 2  # independent draws per seed average the prompt effect away


def test_no_label_changes_across_20_bootstrap_seeds():
    """A study-shaped family (10 seeds × 100 units; true effects from 0 to 6 standard errors, adjusted p
    from 1 down to 1e-6 with one at about 0.07) labelled with the default resamples under 20 bootstrap
    seeds: the p-values come from the bootstrap SE, so a label does not depend on which replicates were
    drawn. (An adjusted p within the SE's Monte-Carlo error of 0.05, about ±10 % of p, still can: the
    report shows p_adjusted beside each label.)"""
    rng = np.random.default_rng(7)
    effects = [0.0, 0.01, 0.02, 0.03, 0.06, 0.08]  # the units' SE of a mean is about 0.01
    family = [[e + rng.normal(0, 0.3, 100) + rng.normal(0, 0.01) for _ in range(10)] for e in effects]
    labels = set()
    for bootstrap in range(20):
        entries = [hierarchical_interval(per_seed, seed=bootstrap) for per_seed in family]
        adjust_family(entries)
        labels.add(tuple(e["resolved"] for e in entries))
    assert len(labels) == 1
    assert labels.pop()[0] is False  # and the null effect is never resolved


def test_drop_power_under_the_stated_alternative():
    """The power to resolve a drop of 0.02 grows with the design's size; the alternative keeps the curve up
    to its peak (the middle n for a rising curve) and ends 0.02 below it."""
    kl = [kl_bon(n) for n in (1, 2, 4, 8, 16)]
    rising = [0.0, 0.02, 0.04, 0.05, 0.06]
    small, large = (
        _curves(rising, seeds=3, prompts=40, noise=0.05),
        _curves(rising, seeds=10, prompts=200, noise=0.05),
    )
    powers = []
    for curves in (small, large):
        _, replicates = cross_fitted_drops([with_drop(curves, kl, 0.02)], resamples=400)
        powers.append(drop_power(replicates[:, 0]))
    assert powers[0] < powers[1] and powers[1] > 0.5
    mean, shifted = large.mean(axis=(0, 1)), with_drop(large, kl, 0.02).mean(axis=(0, 1))
    assert np.allclose(shifted[:3], mean[:3]) and shifted[-1] == pytest.approx(mean[2] - 0.02)
