"""Arena-style model rankings as pure functions: a Bradley–Terry fit over the models of a set of battles,
its bootstrap, and the numbers that compare a judge's model ranking with a reference one (PPE's human
preference set: the reference is the human vote, the judge a reward model).

Sources: the Bradley–Terry fit of the Chatbot Arena leaderboard (Chiang et al. 2024; lm-sys/FastChat
fastchat/serve/monitor/elo_analysis.py) and the agreement, separability and Brier score of Arena-Hard
(Li, Chiang, Frick et al., lm-sys/lm-sys.github.io blog/2024-04-19-arena-hard.md), which PPE (Frick et
al. 2024) reports on its human preference set.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from rmguard.eval.metrics import MetricError, average_ranks, kendall_tau_b, spearman_rho

Battles = tuple[np.ndarray, np.ndarray, int]  # model indices of side a and side b, number of models


def _battles(model_a: Sequence[str], model_b: Sequence[str], outcomes: Sequence[Sequence[float]]):
    """Models (sorted) and their indices per battle, after checking every outcome list is one per battle."""
    if not len(model_a) == len(model_b) or not len(model_a):
        raise MetricError(f"battles need both models, got {len(model_a)} and {len(model_b)} names")
    for outcome in outcomes:
        o = np.asarray(outcome, dtype=float)
        if len(o) != len(model_a):
            raise MetricError(f"one outcome per battle: {len(o)} outcomes for {len(model_a)} battles")
        if np.any((o < 0) | (o > 1)):
            raise MetricError("outcomes must lie in [0, 1] (1: a won, 0: b won, ½: a tie)")
    if any(a == b for a, b in zip(model_a, model_b)):
        raise MetricError("every battle needs two different models")
    models = sorted(set(model_a) | set(model_b))
    index = {m: i for i, m in enumerate(models)}
    ia, ib = np.array([index[m] for m in model_a]), np.array([index[m] for m in model_b])
    return models, (ia, ib, len(models))


def _strengths(
    battles: Battles, outcome: np.ndarray, weight: np.ndarray, iterations: int = 10_000, tol: float = 1e-12
) -> np.ndarray:
    """The weighted Bradley–Terry maximum by Hunter's (2004) MM iteration, in log space (see
    :func:`bradley_terry`)."""
    ia, ib, n = battles
    games, wins = np.zeros((n, n)), np.zeros(n)
    np.add.at(games, (ia, ib), weight)
    np.add.at(wins, ia, outcome * weight)
    np.add.at(wins, ib, (1.0 - outcome) * weight)
    games += games.T
    played = games > 0
    with np.errstate(divide="ignore"):
        log_games, log_wins = np.log(games), np.log(wins)
    theta = np.zeros(n)
    for _ in range(iterations):
        # log n_ij − log(e^θ_i + e^θ_j) where i and j met; never −inf − (−inf) where they did not
        terms = np.subtract(
            log_games, np.logaddexp.outer(theta, theta), out=np.full_like(games, -np.inf), where=played
        )
        update = log_wins - np.logaddexp.reduce(terms, axis=1)
        finite = np.isfinite(update)
        update[finite] -= update[finite].mean()
        step = np.abs(np.where(finite, update - np.where(finite, theta, 0.0), 0.0))
        theta = update
        if step.max() < tol:
            break
    return theta


def bradley_terry(
    model_a: Sequence[str], model_b: Sequence[str], outcome: Sequence[float], iterations: int = 10_000
) -> dict[str, float]:
    """Bradley–Terry strengths θ of the models in battles (a, b, o): the maximum of
    Σ o·log σ(θ_a − θ_b) + (1 − o)·log σ(θ_b − θ_a), with o = 1 when a won, 0 when b won, ½ for a tie.

    The Chatbot Arena leaderboard's fit (``preprocess_battles_to_arrays``, ``bt_loss_and_grad`` and
    ``fit_bt`` in FastChat's elo_analysis.py, where "a draw [counts] as half a win and half a loss"); an
    Arena score is 1000 + 400·θ/ln 10. Solved by Hunter's (2004) MM iteration
    θ_i ← log W_i − log Σ_j n_ij / (e^θ_i + e^θ_j) (W_i: wins of i, ties counting ½; n_ij: battles between
    i and j) in log space, centred to mean 0 over the finite θ. A model that never wins gets −inf; one
    that never loses has no finite maximum and keeps rising until ``iterations`` run out. Either way its
    place in the order, which is all a ranking reads, is right.
    """
    models, battles = _battles(model_a, model_b, [outcome])
    theta = _strengths(battles, np.asarray(outcome, dtype=float), np.ones(len(model_a)), iterations)
    return dict(zip(models, theta.tolist()))


def bootstrap_strengths(
    model_a: Sequence[str],
    model_b: Sequence[str],
    outcomes: Sequence[Sequence[float]],
    resamples: int = 1000,
    seed: int = 0,
) -> tuple[list[str], list[np.ndarray], int]:
    """(models, one resamples × models array of θ per outcome list, resamples where a maximum does not
    exist): the battles resampled with replacement (FastChat's ``get_bootstrap_result``:
    ``battles.sample(frac=1.0, replace=True)``), the same resample for every outcome list, each refitted.

    A resample where some model wins none, or loses none, of its battles under some outcome list has no
    finite Bradley–Terry maximum; it is counted, and its rows are NaN."""
    models, battles = _battles(model_a, model_b, outcomes)
    ia, ib, n = battles
    rng = np.random.default_rng(seed)
    fits = [np.full((resamples, n), np.nan) for _ in outcomes]
    degenerate = 0
    for r in range(resamples):
        weight = np.bincount(rng.integers(0, len(ia), len(ia)), minlength=len(ia)).astype(float)
        thetas = []
        for outcome in outcomes:
            o = np.asarray(outcome, dtype=float)
            wins, losses = np.zeros(n), np.zeros(n)
            np.add.at(wins, ia, o * weight)
            np.add.at(wins, ib, (1 - o) * weight)
            np.add.at(losses, ia, (1 - o) * weight)
            np.add.at(losses, ib, o * weight)
            if np.any((wins == 0) | (losses == 0)):  # a model left out of the resample wins none too
                break
            thetas.append(_strengths(battles, o, weight, tol=1e-9))
        else:
            for fit, theta in zip(fits, thetas):
                fit[r] = theta
            continue
        degenerate += 1
    return models, fits, degenerate


def _pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.triu_indices(n, k=1)


def separability(low: Sequence[float], high: Sequence[float]) -> float:
    """Arena-Hard's separability: the fraction of model pairs whose confidence intervals [low, high] do not
    overlap (low_i > high_j or low_j > high_i)."""
    lo, hi = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
    i, j = _pairs(len(lo))
    return float(np.mean((lo[i] > hi[j]) | (lo[j] > hi[i]))) if len(i) else math.nan


def _confident_order(low: np.ndarray, high: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """+1 where model i is confidently above j, −1 where confidently below, 0 where the intervals overlap."""
    return (low[i] > high[j]).astype(int) - (low[j] > high[i]).astype(int)


def confidence_agreement(
    reference_low: Sequence[float],
    reference_high: Sequence[float],
    low: Sequence[float],
    high: Sequence[float],
) -> float:
    """Arena-Hard's agreement of a judge with a reference: over the model pairs the reference separates
    with confidence (non-overlapping intervals), the mean of +1 when the judge separates the pair with
    confidence in the same order, −1 in the opposite order, and 0 when the judge's intervals overlap.
    NaN when the reference separates no pair."""
    i, j = _pairs(len(reference_low))
    truth = _confident_order(np.asarray(reference_low), np.asarray(reference_high), i, j)
    judged = _confident_order(np.asarray(low), np.asarray(high), i, j)
    separated = truth != 0
    return float(np.mean(truth[separated] * judged[separated])) if separated.any() else math.nan


def brier_score(reference: Sequence[float], mean: Sequence[float], std: Sequence[float]) -> float:
    """Arena-Hard's Brier score of a judge as a forecaster of the reference's pairwise order: for each
    model pair, the forecast P(θ_i > θ_j) = Φ((μ_i − μ_j) / √(σ_i² + σ_j²)) from the Gaussian of the
    judge's bootstrapped strengths (mean μ, standard deviation σ), against the outcome 1[ref_i > ref_j];
    the mean of (forecast − outcome)² over pairs (0 is perfect; a forecast of ½ everywhere scores ¼)."""
    from scipy.special import ndtr

    ref, mu, sigma = (np.asarray(v, dtype=float) for v in (reference, mean, std))
    i, j = _pairs(len(ref))
    gap, spread = mu[i] - mu[j], np.sqrt(sigma[i] ** 2 + sigma[j] ** 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        forecast = ndtr(gap / spread)  # no spread: 1 or 0 by the sign of the gap, and ½ without one
    forecast[np.isnan(forecast)] = 0.5
    outcome = (ref[i] > ref[j]).astype(float)
    return float(np.mean((forecast - outcome) ** 2)) if len(i) else math.nan


def model_ranking(
    model_a: Sequence[str],
    model_b: Sequence[str],
    truth: Sequence[float],
    judged: Sequence[float],
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, float]:
    """How well the model ranking a judge implies matches a reference one, from the same battles decided
    twice (``truth`` and ``judged``: 1, 0 or ½ each), as PPE reports on its human preference set:

    - ``kendall``, ``spearman``: Kendall τ-b and Spearman ρ between the two Bradley–Terry fits
      (:func:`bradley_terry`) over every model; both read only the order (a −inf strength ranks last);
    - ``separability``: of the judge's ``level`` percentile bootstrap intervals (:func:`separability`);
    - ``confidence_agreement``: of the judge's intervals with the reference's (:func:`confidence_agreement`);
    - ``brier``: of the judge's bootstrap Gaussian forecasts against the reference fit (:func:`brier_score`).

    The three bootstrap numbers are NaN when any resample has no Bradley–Terry maximum
    (``bootstrap_undefined`` counts those resamples; see :func:`bootstrap_strengths`).
    """
    reference = bradley_terry(model_a, model_b, truth)
    point = bradley_terry(model_a, model_b, judged)
    models = sorted(reference)
    ref = np.array([reference[m] for m in models])
    x, y = average_ranks(ref), average_ranks([point[m] for m in models])
    result = {"models": len(models), "kendall": kendall_tau_b(x, y), "spearman": spearman_rho(x, y)}
    _, (ref_fits, fits), undefined = bootstrap_strengths(model_a, model_b, [truth, judged], resamples, seed)
    result.update(separability=math.nan, confidence_agreement=math.nan, brier=math.nan)
    if not undefined:
        quantiles = [(1 - level) / 2, (1 + level) / 2]
        (ref_low, ref_high), (low, high) = (
            np.quantile(ref_fits, quantiles, axis=0),
            np.quantile(fits, quantiles, axis=0),
        )
        result.update(
            separability=separability(low, high),
            confidence_agreement=confidence_agreement(ref_low, ref_high, low, high),
            brier=brier_score(ref, fits.mean(axis=0), fits.std(axis=0, ddof=1)),
        )
    return {**result, "bootstrap_undefined": undefined}
