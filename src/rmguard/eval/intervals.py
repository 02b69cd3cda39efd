"""Confidence intervals for means: Student t across independent units (prompts, seeds), or percentile bootstrap."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence

import numpy as np

from rmguard.eval.metrics import nan_mean


def t_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): mean ± t_{(1+level)/2, n−1} · s / √n with s the sample standard deviation.

    NaNs are ignored; with fewer than two values the bounds are NaN (no spread to estimate).
    """
    from scipy.stats import t

    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    if len(x) == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if len(x) < 2:
        return mean, math.nan, math.nan
    half = float(t.ppf((1 + level) / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
    return mean, mean - half, mean + half


def bootstrap_interval(
    values: Sequence[float], level: float = 0.95, resamples: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """(mean, low, high): percentile bootstrap of the NaN-ignoring mean over units resampled with
    replacement (seeded; all resamples drawn at once).

    Units are pairs for accuracy and prompts for per-prompt correlations. NaN values stay in the
    resamples and each resample's mean ignores them, as the point estimate does; a resample of only NaNs
    is left out. No values give NaN throughout.
    """
    x = np.asarray(values, dtype=float)
    if not len(x):
        return math.nan, math.nan, math.nan
    mean = nan_mean(x)
    rng = np.random.default_rng(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a resample of only NaNs: NaN, dropped below
        means = np.nanmean(x[rng.integers(0, len(x), size=(resamples, len(x)))], axis=1)
    means = means[~np.isnan(means)]
    if not len(means):
        return mean, math.nan, math.nan
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return mean, float(low), float(high)


def stratified_interval(
    values: Sequence[float],
    strata: Sequence[str],
    level: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
    weights: Mapping[str, float] | None = None,
) -> tuple[float, float, float]:
    """(mean, low, high): Σ_s w_s·mean_s / Σ_s w_s over strata s (w_s = 1 unless ``weights`` gives each
    stratum's), with a percentile bootstrap that resamples units with replacement within each stratum
    (each keeps its size).

    For headlines that average subsets (JudgeBench's macro average, PPE's mean over source benchmarks,
    RMB's four parts, RewardBench v1's sections): resampling all units together would let a stratum's
    weight drift. A stratum of one unit contributes its value to every resample.
    """
    x, labels = np.asarray(values, dtype=float), np.asarray(strata, dtype=object)
    if not len(x):
        return math.nan, math.nan, math.nan
    names = list(dict.fromkeys(labels))
    groups = [x[labels == name] for name in names]
    w = np.array([1.0 if weights is None else weights[name] for name in names])
    w = w / w.sum()
    mean = float(np.dot(w, [g.mean() for g in groups]))
    rng = np.random.default_rng(seed)
    means = np.dot(w, [g[rng.integers(0, len(g), size=(resamples, len(g)))].mean(axis=1) for g in groups])
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return mean, float(low), float(high)


def seeds_and_units_interval(
    values: np.ndarray, over: str = "both", level: float = 0.95, resamples: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """(mean, low, high) of a [seeds, units] matrix (units: prompts or pairs), percentile bootstrap.

    ``over="units"`` resamples units with replacement (every seed keeps the same units: the interval of
    the seed-averaged mean over prompts); ``over="both"`` also resamples seeds, so the interval carries the
    seed-to-seed spread too. Every resample is a mean of observed values, so the interval stays inside the
    statistic's range (an accuracy interval inside [0, 1]), unlike a t interval over two or three seeds.
    A single unit gives NaN bounds (nothing to resample); NaNs are ignored.
    """
    x = np.atleast_2d(np.asarray(values, dtype=float))
    if over not in ("units", "both"):
        raise ValueError(f"over must be 'units' or 'both', got {over!r}")
    if not np.isfinite(x).any():
        return math.nan, math.nan, math.nan
    mean = float(np.nanmean(x))
    if x.shape[1] < 2:
        return mean, math.nan, math.nan
    rng = np.random.default_rng(seed)
    units = rng.integers(0, x.shape[1], size=(resamples, x.shape[1]))
    rows = (
        rng.integers(0, x.shape[0], size=(resamples, x.shape[0]))
        if over == "both"
        else np.broadcast_to(np.arange(x.shape[0]), (resamples, x.shape[0]))
    )
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a resample of only NaNs: NaN, dropped below
        means = np.nanmean(x[rows[:, :, None], units[:, None, :]], axis=(1, 2))  # [resamples]
    low, high = np.nanquantile(means, [(1 - level) / 2, (1 + level) / 2])
    return mean, float(low), float(high)
