"""The study's statistics: hierarchical bootstrap intervals, power, the cross-fitted over-optimization drop
and Gao et al.'s fit with intervals. Pure functions of arrays.

Every study design here is *seeds × units*: a seed is one draw of the world's randomness (training pairs,
label flips, held-out styles) and of the proxy's initialisation, and units are what a seed is measured on
(pairs, prompts). Intervals resample both levels, seeds first and then units within each drawn seed
(a two-stage, hierarchical bootstrap), so they carry the seed-to-seed spread and the units' spread.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from statistics import NormalDist
from typing import Any

import numpy as np

from rmguard.overopt.bon_math import gao_fit

LEVEL = 0.95
POWER = 0.8
RESAMPLES = 5000


def minimum_detectable_effect(se: float, level: float = LEVEL, power: float = POWER) -> float:
    """The smallest true effect a two-sided test at ``level`` detects with probability ``power``:

        MDE = (z_{(1+level)/2} + z_{power}) · SE

    (2.80 · SE at 95 % and 80 % power), with SE the statistic's standard error at the design's size.
    """
    z = NormalDist().inv_cdf
    return (z((1 + level) / 2) + z(power)) * se


def resolved(ci: Sequence[float]) -> bool:
    """Whether an interval excludes 0 (a difference or drop the data establish, at the interval's level)."""
    low, high = ci
    return bool(np.isfinite(low) and np.isfinite(high) and (low > 0 or high < 0))


def p_value(point: float, se: float) -> float:
    """Two-sided p of "the statistic is 0": 2 Φ(−|point| / SE), SE the bootstrap standard error.

    From the SE rather than from counting replicates beyond 0: a count resolves p only to 1/R, and Holm's
    smallest threshold across ~40 comparisons is 0.05/40; the SE of 5,000 replicates is known to about 1 %,
    so a p-value moves by far less than that between bootstrap seeds."""
    if not (math.isfinite(point) and math.isfinite(se)):
        return math.nan
    if se == 0:
        return 0.0 if point != 0 else 1.0
    return 2 * NormalDist().cdf(-abs(point) / se)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values: the k-th smallest of m becomes max over j ≤ k of (m − j + 1) p_(j),
    capped at 1 (NaN stays NaN and counts in m). "Resolved" at family-wise level α: adjusted p < α."""
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(np.where(np.isnan(p), np.inf, p), kind="stable")
    m = len(p)
    adjusted = np.full(m, np.nan)
    running = 0.0
    for rank, index in enumerate(order):
        if np.isnan(p[index]):
            continue
        running = max(running, min(1.0, (m - rank) * p[index]))
        adjusted[index] = running
    return adjusted.tolist()


def describe(point: float, replicates: np.ndarray, level: float = LEVEL) -> dict[str, Any]:
    """{mean, ci, se, mde, p_value, resolved} of a statistic from its bootstrap replicates (percentile
    interval; ``resolved``: the interval excludes 0, until a family's Holm adjustment replaces it)."""
    replicates = replicates[np.isfinite(replicates)]
    if len(replicates) < 2:
        return {
            "mean": point,
            "ci": [math.nan, math.nan],
            "se": math.nan,
            "mde": math.nan,
            "p_value": math.nan,
            "resolved": False,
        }
    low, high = np.quantile(replicates, [(1 - level) / 2, (1 + level) / 2])
    se = float(np.std(replicates, ddof=1))
    return {
        "mean": float(point),
        "ci": [float(low), float(high)],
        "se": se,
        "mde": minimum_detectable_effect(se, level),
        "p_value": p_value(float(point), se),
        "resolved": resolved([low, high]),
    }


def adjust_family(entries: Sequence[dict[str, Any]], alpha: float = 1 - LEVEL) -> None:
    """Holm across ``entries`` (describe() results, one family of comparisons): each gets ``p_adjusted``,
    and ``resolved`` becomes adjusted p < ``alpha`` (in place; the intervals stay as they are)."""
    for entry, adjusted in zip(entries, holm([e["p_value"] for e in entries])):
        entry["p_adjusted"] = adjusted
        entry["resolved"] = bool(np.isfinite(adjusted) and adjusted < alpha)


def _padded(per_seed: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    sizes = np.array([len(v) for v in per_seed])
    values = np.full((len(per_seed), max(sizes.max(), 1)), np.nan)
    for s, v in enumerate(per_seed):
        values[s, : len(v)] = v
    return values, sizes


def hierarchical_means(
    per_seed: Sequence[np.ndarray], resamples: int = RESAMPLES, seed: int = 0, crossed: bool = False
) -> tuple[float, np.ndarray]:
    """(mean of the seed means, [resamples] bootstrap replicates of it).

    One replicate draws S seeds with replacement and, within each drawn seed, as many units as it has with
    replacement; its value is the mean over drawn seeds of the drawn units' mean. Seeds may have different
    units (each seed's own world: nested). With ``crossed`` every seed measures the same units (the shared
    Best-of-N prompts) and one draw of units serves all seeds, so a unit's effect shared by the seeds stays
    in the interval. NaN units are ignored.
    """
    values, sizes = _padded([np.asarray(v, dtype=float) for v in per_seed])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a seed of only NaN units: NaN, ignored
        point = float(np.nanmean(np.nanmean(values, axis=1)))
        rng = np.random.default_rng(seed)
        seeds = rng.integers(0, len(sizes), size=(resamples, len(sizes)))  # [R, S]
        drawn = sizes[seeds]  # units of each drawn seed
        draws = rng.random((resamples, 1 if crossed else len(sizes), values.shape[1]))
        units = np.floor(draws * drawn[:, :, None]).astype(int)
        picked = values[seeds[:, :, None], units]  # [R, S, U]
        picked[np.arange(values.shape[1])[None, None, :] >= drawn[:, :, None]] = np.nan
        replicates = np.nanmean(np.nanmean(picked, axis=2), axis=1)
    return point, replicates


def hierarchical_interval(
    per_seed: Sequence[np.ndarray],
    level: float = LEVEL,
    resamples: int = RESAMPLES,
    seed: int = 0,
    crossed: bool = False,
) -> dict[str, Any]:
    """:func:`describe` of the mean over seeds and units with the two-stage bootstrap."""
    point, replicates = hierarchical_means(per_seed, resamples, seed, crossed)
    return describe(point, replicates, level)


# ----------------------------------------------------------------------------------------------- the drop


def _drop(curves: Sequence[np.ndarray], first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Cross-fitted peak − end for each [S, P, K] curve set, on one split of the prompts into two halves."""
    out = []
    for c in curves:
        a, b = c[:, first].mean(axis=(0, 1)), c[:, second].mean(axis=(0, 1))
        out.append(0.5 * ((b[np.argmax(a)] - b[-1]) + (a[np.argmax(b)] - a[-1])))
    return np.array(out)


def with_drop(curves: np.ndarray, kl: Sequence[float], drop: float) -> np.ndarray:
    """[S, P, K] curves under the alternative "gold falls by ``drop`` after its peak": the mean curve keeps
    its values up to its peak (for a curve that peaks at its end, the middle n), then is held at the peak's
    value and lowered linearly in d = √KL, by ``drop`` at the last n; each prompt and seed keeps its own
    deviations from the mean (the design's noise)."""
    d = np.sqrt(np.asarray(kl, dtype=float))
    mean = curves.mean(axis=(0, 1))
    peak = int(np.argmax(mean))
    if peak == len(d) - 1:
        peak = (len(d) - 1) // 2
    after = np.arange(len(d)) > peak
    ramp = np.clip((d - d[peak]) / max(d[-1] - d[peak], 1e-12), 0, None)
    return curves - np.where(after, mean - mean[peak], 0.0) - drop * ramp


def drop_power(replicates: np.ndarray, level: float = LEVEL) -> float:
    """The share of bootstrap worlds drawn under the alternative whose drop a reader would call resolved
    (drop / SE beyond the two-sided ``level``'s z): the power to see that drop at this design's size."""
    replicates = replicates[np.isfinite(replicates)]
    if len(replicates) < 2:
        return math.nan
    z = NormalDist().inv_cdf((1 + level) / 2)
    return float(np.mean(replicates > z * np.std(replicates, ddof=1)))


def cross_fitted_drops(
    curves: Sequence[np.ndarray], resamples: int = 1000, splits: int = 20, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(point drops [C], bootstrap replicates [R, C]) of the cross-fitted gold drop of C curve sets.

    Each curve set is [S, P, K]: seeds × prompts × the n of Best-of-N (the last n is the end). The peak n is
    chosen on one half of the prompts and the drop gold(peak) − gold(end) measured on the other half, then
    the halves swap and the two drops are averaged: choosing and judging the peak on the same prompts would
    make a flat curve's noise look like a drop. The point estimate averages ``splits`` random halvings; a
    replicate draws one halving, then seeds with replacement and prompts with replacement within each half.
    All curve sets share the seeds and prompts (the same replicate indices), so replicate differences give
    paired intervals.
    """
    curves = [np.asarray(c, dtype=float) for c in curves]
    seeds, prompts = curves[0].shape[:2]
    rng = np.random.default_rng(seed)
    halves = [np.array_split(rng.permutation(prompts), 2) for _ in range(splits)]
    point = np.mean([_drop(curves, a, b) for a, b in halves], axis=0)
    replicates = []
    for _ in range(resamples):
        first, second = np.array_split(rng.permutation(prompts), 2)
        drawn = rng.integers(0, seeds, seeds)
        resampled = [c[drawn] for c in curves]
        replicates.append(_drop(resampled, rng.choice(first, len(first)), rng.choice(second, len(second))))
    return point, np.array(replicates)


# ----------------------------------------------------------------------------------------------- Gao's fit


def gao_fit_intervals(
    kl: Sequence[float], curves: np.ndarray, level: float = LEVEL, resamples: int = RESAMPLES, seed: int = 0
) -> dict[str, Any]:
    """Gao et al.'s fit gold(d) − gold(0) = d(α − βd), d = √KL, of the mean curve of [S, P, K] per-prompt
    curves, with bootstrap intervals (seeds, then prompts) on α, β and the fitted peak.

    A peak is claimed (``turns``) only where the curve turns inside the measured range: β's interval is
    above 0 and the fitted peak's KL interval lies below the largest measured KL (replicates that never
    turn, β ≤ 0, put their peak at infinity). Otherwise the peak fields are None:
    a fit that keeps rising (or whose vertex lies beyond the data) has no peak to report.
    """
    curves = np.asarray(curves, dtype=float)
    point = gao_fit(kl, curves.mean(axis=(0, 1)))
    rng = np.random.default_rng(seed)
    seeds, prompts = curves.shape[:2]
    fits = []
    for _ in range(resamples):
        drawn = curves[rng.integers(0, seeds, seeds)][:, rng.integers(0, prompts, prompts)]
        fits.append(gao_fit(kl, drawn.mean(axis=(0, 1))))
    out: dict[str, Any] = {"r2": point["r2"]}
    for key in ("alpha", "beta"):
        out[key] = describe(point[key], np.array([f[key] for f in fits]), level)
    peaks = np.array([f["peak_kl"] if f["beta"] > 0 else np.inf for f in fits])
    peak = describe(point["peak_kl"], peaks, level)
    turns = bool(out["beta"]["ci"][0] > 0 and np.quantile(peaks, (1 + level) / 2) < max(kl))
    out["turns"] = turns
    out["peak_kl"] = peak if turns else None
    out["peak_gold"] = (
        describe(point["peak_gold"], np.array([f["peak_gold"] for f in fits]), level) if turns else None
    )
    return out
