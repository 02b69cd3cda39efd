"""The pure Best-of-N curve math: estimators, ensembles and fits over score arrays, no files and no models.

For each prompt, N responses are sampled once; for n = 1 … N the expected value of the proxy's favourite
among n samples is computed with the unbiased estimator over all N samples (:func:`best_of_n_expectation`),
on the x-axis KL_BoN = log n − (n − 1)/n (:func:`kl_bon`). :mod:`rmguard.overopt.bon` builds the curves of a
set of reward models from these and runs the command.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from rmguard.eval.intervals import seeds_and_units_interval

METRICS = ("gold", "proxy", "proxy_z", "gold_z", "gap", "length")


def kl_bon(n: int) -> float:
    """KL(best-of-n ‖ policy) = log n − (n − 1)/n (Stiennon et al. 2020; exact for distinct samples)."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    return math.log(n) - (n - 1) / n


def log_spaced(n_max: int, per_doubling: int = 2) -> list[int]:
    """Integers from 1 to ``n_max`` about ``per_doubling`` per doubling of n, always with 1 and n_max."""
    if n_max < 1:
        raise ValueError(f"n must be at least 1, got {n_max}")
    points = max(2, int(per_doubling * math.log2(n_max)) + 1) if n_max > 1 else 1
    return sorted({1, n_max, *(int(round(x)) for x in np.geomspace(1, n_max, points))})


def bon_weights(n_samples: int, n: int) -> np.ndarray:
    """[N] probability that the i-th lowest-ranked of N samples is the best of a random n-subset.

    P(rank i wins) = C(i − 1, n − 1) / C(N, n) for i = 1 … N: the unbiased best-of-n estimator of Nakano et
    al. (2021), used by Gao et al. (2023). Every n uses all N samples, so n = 1 is the pool's mean and the
    curve's variance is far below that of "best among the first n".
    """
    if not 1 <= n <= n_samples:
        raise ValueError(f"n must be in [1, {n_samples}], got {n}")
    from scipy.special import gammaln  # here: the command line imports this module for its options

    i = np.arange(1, n_samples + 1)
    log_w = (
        gammaln(i)
        - gammaln(n)
        - gammaln(np.maximum(i - n + 1, 1))
        - (gammaln(n_samples + 1) - gammaln(n + 1) - gammaln(n_samples - n + 1))
    )
    return np.where(i >= n, np.exp(log_w), 0.0)


def best_of_n_expectation(selector: np.ndarray, values: np.ndarray, ns: Sequence[int]) -> np.ndarray:
    """[P, len(ns)] expected ``values`` of the selector's best among n samples drawn from each prompt's N.

    Samples are ranked by the selector (ties keep sample order, as a stable sort does) and weighted by
    :func:`bon_weights`.
    """
    selector, values = np.asarray(selector, dtype=float), np.asarray(values, dtype=float)
    if max(ns) > selector.shape[1]:
        raise ValueError(f"n = {max(ns)} but only {selector.shape[1]} samples per prompt")
    order = np.argsort(selector, axis=1, kind="stable")
    ranked = np.take_along_axis(values, order, axis=1)
    weights = np.stack([bon_weights(selector.shape[1], n) for n in ns], axis=1)  # [N, K]
    return ranked @ weights


def standardize(scores: np.ndarray) -> np.ndarray:
    """(s − mean) / std over the whole pool: scores of different RMs in one unit (pool standard deviations)."""
    scores = np.asarray(scores, dtype=float)
    std = scores.std()
    return (scores - scores.mean()) / (std if std > 0 else 1.0)


ENSEMBLES = ("mean", "wco", "uwo")
UWO_LAMBDA = 0.5  # Coste et al.'s best-of-n default (their code's uwo_weights = 0.5)


def ensemble(members: Sequence[np.ndarray], how: str, uwo_lambda: float = UWO_LAMBDA) -> np.ndarray:
    """One score per response from k members' scores ([P, N] each): :func:`combine` over the members'
    standardized scores (:func:`standardize`, each member over its whole pool).

    Reward models trained with BT are only defined up to a shift and scale, so the members are put on a
    common scale first (Coste et al. and Gao et al. normalise each proxy over the initial policy's samples,
    here the pool); without that, ``wco`` would follow whichever member has the lowest offset and the
    variance would mix units.
    """
    return combine(np.stack([standardize(m) for m in members]), how, uwo_lambda)


def combine(z: np.ndarray, how: str, uwo_lambda: float = UWO_LAMBDA) -> np.ndarray:
    """Coste et al.'s (2024) ensemble objectives over k members' standardized scores z ([k, ...]):

        mean:  R = (1/k) Σ_i z_i
        wco:   R = min_i z_i                                   (worst-case optimization)
        uwo:   R = (1/k) Σ_i z_i − λ · (1/k) Σ_i (z_i − z̄)²    (uncertainty-weighted optimization)

    UWO's penalty is the intra-ensemble variance of each response's k scores (the 1/k form of the paper and
    of its best-of-n code); λ defaults to 0.5, their best-of-n value.
    """
    if how == "mean":
        return z.mean(axis=0)
    if how == "wco":
        return z.min(axis=0)
    if how == "uwo":
        return z.mean(axis=0) - uwo_lambda * z.var(axis=0)
    raise ValueError(f"unknown ensemble '{how}'; choose one of {', '.join(ENSEMBLES)}")


def pick_metrics(
    selector: np.ndarray, gold: np.ndarray, length: np.ndarray, ns: Sequence[int]
) -> dict[str, np.ndarray]:
    """Per-prompt curves [P, len(ns)] for one selector: gold, proxy (the selector's own score), their pool
    z-scores and the gap proxy_z − gold_z, and the pick's length."""
    out = {
        "gold": best_of_n_expectation(selector, gold, ns),
        "proxy": best_of_n_expectation(selector, selector, ns),
        "proxy_z": best_of_n_expectation(selector, standardize(selector), ns),
        "gold_z": best_of_n_expectation(selector, standardize(gold), ns),
        "length": best_of_n_expectation(selector, length, ns),
    }
    out["gap"] = out["proxy_z"] - out["gold_z"]
    return out


def curves_with_intervals(
    per_seed: Sequence[dict[str, np.ndarray]], level: float = 0.95
) -> dict[str, list[dict[str, float]]]:
    """Mean curves with intervals, for the per-prompt curves of one or more seeds of a selector.

    For each metric and n: the mean over seeds and prompts; a bootstrap interval over prompts (seeds
    averaged, ``prompt_low/high``) and one over seeds and prompts resampled together (``both_low/high``,
    equal to the prompt interval for a single seed). Bootstrap means stay inside the metric's range.
    """
    result: dict[str, list[dict[str, float]]] = {}
    for metric in METRICS:
        stacked = np.stack([curves[metric] for curves in per_seed])  # [S, P, K]
        rows = []
        for k in range(stacked.shape[2]):
            mean, p_low, p_high = seeds_and_units_interval(stacked[:, :, k].mean(axis=0), "units", level)
            _, b_low, b_high = (
                seeds_and_units_interval(stacked[:, :, k], "both", level)
                if len(per_seed) > 1
                else (mean, p_low, p_high)
            )
            rows.append(
                {
                    "mean": mean,
                    "prompt_low": p_low,
                    "prompt_high": p_high,
                    "both_low": b_low,
                    "both_high": b_high,
                }
            )
        result[metric] = rows
    return result


def gao_fit(kl: Sequence[float], gold: Sequence[float]) -> dict[str, float]:
    """Least-squares fit of Gao et al.'s (2023) best-of-n form to a gold curve.

        gold(d) − gold(0) = d · (α − β d),   d = √KL_BoN

    ``gold[0]`` must be the n = 1 point (d = 0). The fitted curve peaks at d* = α / (2β) with the gain
    α² / (4β) when β > 0; with β ≤ 0 it never turns down (peak fields NaN). ``r2`` is the fit's R² on the
    gains.
    """
    d = np.sqrt(np.asarray(kl, dtype=float))
    y = np.asarray(gold, dtype=float) - float(gold[0])
    if d[0] != 0:
        raise ValueError("the first point must be n = 1 (KL 0)")
    design = np.stack([d, -(d**2)], axis=1)
    (alpha, beta), *_ = np.linalg.lstsq(design, y, rcond=None)
    residual = y - design @ np.array([alpha, beta])
    total = float(((y - y.mean()) ** 2).sum())
    peak_d = alpha / (2 * beta) if beta > 0 else math.nan
    return {
        "alpha": float(alpha),
        "beta": float(beta),
        "peak_d": float(peak_d),
        "peak_kl": float(peak_d**2),
        "peak_gain": float(alpha**2 / (4 * beta)) if beta > 0 else math.nan,
        "peak_gold": float(gold[0] + alpha**2 / (4 * beta)) if beta > 0 else math.nan,
        "r2": 1 - float((residual**2).sum()) / total if total > 0 else math.nan,
    }


def gold_peak(ns: Sequence[int], gold_mean: Sequence[float]) -> dict[str, float]:
    """Where the mean gold curve peaks, and how far it has fallen by the largest n."""
    best = int(np.nanargmax(gold_mean))
    return {
        "peak_n": int(ns[best]),
        "peak_kl": kl_bon(ns[best]),
        "gold_at_peak": float(gold_mean[best]),
        "gold_at_max_n": float(gold_mean[-1]),
        "drop_after_peak": float(gold_mean[best] - gold_mean[-1]),
    }
