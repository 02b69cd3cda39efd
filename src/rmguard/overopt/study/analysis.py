"""From the proxies' scores to the study's numbers: scenarios, norm dispersion, Best-of-N, the cross-fitted
drop, Gao fits, paired differences, power and the headline. Pure functions of arrays.

The input is a list of *worlds* (one per seed; see ``worlds.py``): each has its own evaluation sets and,
per row (an objective, an ensemble, WARM or a control), a *member*: ``{"files": {file: (rewards, norms)},
"bon": [P, N] rewards}``. The Best-of-N prompts and pool are shared by all worlds. Every interval is the
two-stage bootstrap of ``statistics.py`` (seeds, then units) and comes with its standard error, minimum
detectable effect at 80 % power and whether it excludes 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rmguard.eval.eval_sets import EvalSet, pair_correct, prompt_correlations
from rmguard.eval.latent import outlier_p_values
from rmguard.eval.splits import SHIFTED_SCENARIOS
from rmguard.overopt.bon import Curves
from rmguard.overopt.bon_math import (
    best_of_n_expectation,
    curves_with_intervals,
    ensemble,
    kl_bon,
    log_spaced,
    pick_metrics,
)
from rmguard.overopt.study.design import CONTROLS, ORACLE
from rmguard.overopt.study.statistics import (
    LEVEL,
    adjust_family,
    cross_fitted_drops,
    describe,
    drop_power,
    gao_fit_intervals,
    hierarchical_interval,
    with_drop,
)

DROP_ALTERNATIVE = 0.02  # the drop whose power each row reports: gold falling by 0.02 after its peak
OUTLIER_LEVEL = 0.05  # a latent is an outlier when its p-value is below this (eval/latent.outlier_rate's)
PRIMARY_METRICS = ("gold_at_max_n", "gold_drop", "in_domain_accuracy", "shifted_tau_mean", "hidden_norm_std")


@dataclass
class Member:
    """One row of one world: its rewards and ‖h‖ on every evaluation split (‖h‖ None for a selector
    without a hidden state of its own: a control, an ensemble, a calibration), its rewards of the
    Best-of-N pool [P, N], for a trained objective the exact log-prob per token of the world's chosen
    training responses, and for InfoRM the latent means μ of the pool's responses [P, N, d]."""

    files: dict[str, tuple[np.ndarray, np.ndarray | None]]
    bon: np.ndarray
    lm_logprob: float | None = None
    latents: np.ndarray | None = None


@dataclass
class BonPool:
    """The held-out Best-of-N prompts every world shares: their ids and prompts, the policy's samples
    [P][N], each sample's length in tokens [P, N] and its gold [P, N] (filled once labelled)."""

    ids: list[str]
    prompts: list[Any]
    responses: list[list[str]]
    tokens: np.ndarray
    gold: np.ndarray | None = None


@dataclass
class World:
    """One seed's draw of the study: its evaluation splits, every row's member, the untrained model's ‖h‖
    per split and log-prob per token of the chosen training responses (both from the proxies' path)."""

    seed: int
    sets: list[EvalSet]
    members: dict[str, Member]
    backbone: dict[str, np.ndarray] = field(default_factory=dict)
    lm_logprob_start: float | None = None


def combine(members: Sequence[Member], how: str) -> Member:
    """One member from several: ``bon.ensemble`` of their standardized rewards over everything they scored
    (BT rewards are defined up to shift and scale, so each member is first put in its own standard units)."""
    names = list(members[0].files)
    flat = [np.concatenate([m.files[f][0] for f in names] + [m.bon.ravel()]) for m in members]
    combined = ensemble(flat, how)
    files: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
    offset = 0
    for f in names:
        size = len(members[0].files[f][0])
        files[f] = (combined[offset : offset + size], None)
        offset += size
    return Member(files, combined[offset:].reshape(members[0].bon.shape))


def unit_values(sets: Sequence[EvalSet], member: Member) -> dict[str, np.ndarray]:
    """file → per-unit values of one member: pair correctness in-domain, per-prompt τ elsewhere; and
    ``shifted``, the three shifted scenarios' prompts pooled."""
    values = {}
    for s in sets:
        per = pair_correct if s.kind == "pairs" else prompt_correlations
        values[s.name] = per(s, member.files[s.name][0])
    values["shifted"] = np.concatenate([values[f] for f in SHIFTED_SCENARIOS if f in values])
    return values


def flat(prefix: str, result: dict[str, Any]) -> dict[str, Any]:
    """``prefix``, ``prefix_ci``, ``prefix_mde``, ``prefix_resolved`` from a :func:`describe` result."""
    return {
        prefix: result["mean"],
        f"{prefix}_ci": result["ci"],
        f"{prefix}_mde": result["mde"],
        f"{prefix}_resolved": result["resolved"],
    }


def norm_dispersion(worlds: Sequence[Any], norms_of: Any) -> dict[str, Any]:
    """Per split: the std of ‖h‖ over the split's responses, one value per seed, with its interval over
    seeds (``norms_of(world)`` → {file: norms}). Splits are never pooled: their responses differ."""
    per_file: dict[str, list[float]] = {}
    for world in worlds:
        for file, norms in norms_of(world).items():
            per_file.setdefault(file, []).append(float(np.std(norms)))
    return {
        file: {**hierarchical_interval([np.array([v]) for v in stds]), "per_seed": stds}
        for file, stds in per_file.items()
    }


def _row_curves(worlds: Sequence[World], name: str, bon: BonPool, ns: list[int]) -> list[dict]:
    return [pick_metrics(w.members[name].bon, bon.gold, bon.tokens, ns) for w in worlds]


def _bon_entry(
    name: str, curves: Curves, per_prompt: np.ndarray, kl: list[float], drop_resolved: bool
) -> dict[str, Any]:
    """Gold at n = 1 and at the largest n, the peak n, and Gao's fit, whose peak is claimed only where the
    cross-fitted drop is resolved (a vertex alone is not evidence that the curve turns)."""
    rows = curves.curves[name]["gold"]
    gold = [r["mean"] for r in rows]
    fit = gao_fit_intervals(kl, per_prompt)
    if not drop_resolved:
        fit.update(turns=False, peak_kl=None, peak_gold=None)
    return {
        "gold_at_n1": gold[0],
        "gold_at_max_n": gold[-1],
        "gold_at_max_n_ci": [rows[-1]["both_low"], rows[-1]["both_high"]],
        "gold_peak_n": curves.ns[int(np.argmax(gold))],
        "gao_fit": fit,
    }


def _differences(
    worlds: Sequence[World],
    rows: Sequence[str],
    baseline: str,
    units: dict[str, list[dict[str, np.ndarray]]],
    gold_max: dict[str, np.ndarray],
    drops: dict[str, dict[str, Any]],
    norms: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """row − baseline, paired by seed and unit, for every row that is not a control."""
    files = [s.name for s in worlds[0].sets]
    out = {}
    for name in rows:
        if name == baseline or name in CONTROLS:
            continue
        entry = {
            "in_domain_accuracy": hierarchical_interval(
                [a[files[0]] - b[files[0]] for a, b in zip(units[name], units[baseline])]
            ),
            "shifted_tau_mean": hierarchical_interval(
                [a["shifted"] - b["shifted"] for a, b in zip(units[name], units[baseline])]
            ),
            "gold_at_max_n": hierarchical_interval(list(gold_max[name] - gold_max[baseline]), crossed=True),
            "gold_drop": drops[name],
        }
        if name in norms and baseline in norms:
            entry["hidden_norm_std"] = {
                f: hierarchical_interval(
                    [
                        np.array([a - b])
                        for a, b in zip(norms[name][f]["per_seed"], norms[baseline][f]["per_seed"])
                    ]
                )
                for f in norms[name]
            }
        out[f"{name} − {baseline}"] = entry
    return out


def _lm_logprob(worlds: Sequence[World], name: str) -> dict[str, Any]:
    """``lm_logprob``: the mean over seeds of the exact log-prob per token of each world's chosen training
    responses, under the untrained model (``start``) and under this row's proxy (``end``); rows without
    (controls, ensembles) have none."""
    ends = [w.members[name].lm_logprob for w in worlds]
    starts = [w.lm_logprob_start for w in worlds]
    if any(v is None for v in ends + starts):
        return {}
    return {
        "lm_logprob": {"start": float(np.mean(starts)), "end": float(np.mean(ends)), "per_seed_end": ends}
    }


def primary_family(
    objectives: dict[str, Any], differences: dict[str, Any], drops: dict[str, Any], metrics: Sequence[str]
) -> list[dict[str, Any]]:
    """The comparisons of the primary endpoint, one describe() result each: every row's drop (when
    ``gold_drop`` is primary) and every paired difference in a primary metric (‖h‖ std per split)."""
    family = [drops[name] for name in objectives] if "gold_drop" in metrics else []
    for entry in differences.values():
        for metric in metrics:
            value = entry.get(metric)
            if isinstance(value, dict) and "mean" in value:
                family.append(value)
            elif isinstance(value, dict):
                family.extend(value.values())
    return family


def _drops(
    rows: Sequence[str], gold_curves: dict[str, np.ndarray], kl: list[float]
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]], dict[str, float]]:
    """(each row's cross-fitted drop; the points and replicates behind them, for paired differences; each
    row's drop replicates under the alternative, the same bootstrap worlds with a DROP_ALTERNATIVE drop
    added, for its power)."""
    curves = [gold_curves[name] for name in rows]
    alternative = [with_drop(c, kl, DROP_ALTERNATIVE) for c in curves]
    point, replicates = cross_fitted_drops(curves + alternative)
    count = len(rows)
    drops = {name: describe(point[k], replicates[:, k]) for k, name in enumerate(rows)}
    alternative = {name: replicates[:, count + k] for k, name in enumerate(rows)}
    return drops, {"point": point[:count], "replicates": replicates[:, :count]}, alternative


def analyse(
    worlds: Sequence[World],
    bon: BonPool,
    rows: Sequence[str],
    baseline: str | None,
    max_n: int,
    primary_metrics: Sequence[str] = PRIMARY_METRICS,
) -> tuple[dict[str, Any], Curves]:
    """Every number of one design cell (see the module docstring) for ``rows``, BoN up to ``max_n``, and
    the Best-of-N curves with their intervals. The primary endpoint's comparisons (``primary_metrics`` at
    ``max_n``, against ``baseline``) are one Holm family: their ``resolved`` is adjusted p < 0.05."""
    ns = log_spaced(max_n)
    kl = [kl_bon(n) for n in ns]
    files = [s.name for s in worlds[0].sets]
    per_seed = {name: _row_curves(worlds, name, bon, ns) for name in rows}
    curves = Curves(
        ns,
        kl,
        {name: curves_with_intervals(c) for name, c in per_seed.items()},
        {name: "oracle" if name == ORACLE else "control" if name in CONTROLS else "proxy" for name in rows},
        {name: len(worlds) for name in rows},
    )
    gold_curves = {name: np.stack([c["gold"] for c in per_seed[name]]) for name in rows}  # [S, P, K]
    drops, paired_drops, alternative = _drops(rows, gold_curves, kl)
    units = {name: [unit_values(w.sets, w.members[name]) for w in worlds] for name in rows}
    gold_max = {name: gold_curves[name][:, :, -1] for name in rows}
    norms = {
        name: norm_dispersion(worlds, lambda w, n=name: {f: w.members[n].files[f][1] for f in files})
        for name in rows
        if worlds[0].members[name].files[files[0]][1] is not None
    }
    differences = {}
    if baseline in rows:
        k = rows.index(baseline)
        point, replicates = paired_drops["point"], paired_drops["replicates"]
        paired = {
            name: describe(point[j] - point[k], replicates[:, j] - replicates[:, k])
            for j, name in enumerate(rows)
        }
        differences = _differences(worlds, rows, baseline, units, gold_max, paired, norms)
    family = primary_family(dict.fromkeys(rows), differences, drops, primary_metrics)
    adjust_family(family)
    # Holm tests the smallest of m p-values at α/m and the largest at α: a drop's label lies between
    strictest = 1 - (1 - LEVEL) / len(family) if "gold_drop" in primary_metrics else LEVEL
    objectives = {}
    for name in rows:
        scenarios = {f: hierarchical_interval([u[f] for u in units[name]]) for f in files}
        objectives[name] = {
            "seeds": len(worlds),
            "control": name in CONTROLS,
            **flat("in_domain_accuracy", scenarios[files[0]]),
            **flat("shifted_tau_mean", hierarchical_interval([u["shifted"] for u in units[name]])),
            **_drop_entry(drops[name], alternative[name], strictest),
            **_bon_entry(name, curves, gold_curves[name], kl, drops[name]["resolved"]),
            "scenarios": scenarios,
            "hidden_norms": norms.get(name, {}),
            **_lm_logprob(worlds, name),
            **latent_outliers(worlds, name, ns),
        }
    backbone = norm_dispersion(worlds, lambda w: w.backbone) if worlds[0].backbone else {}
    best_of_n = {"ns": ns, "kl": kl, "prompts": int(bon.gold.shape[0]), "curves": curves.curves}
    if baseline in rows:
        best_of_n["gold_minus_baseline"] = {
            name: [
                hierarchical_interval(
                    list(gold_curves[name][:, :, k] - gold_curves[baseline][:, :, k]), crossed=True
                )
                for k in range(len(ns))
            ]
            for name in rows
            if name != baseline
        }
    summary = {
        "objectives": objectives,
        "paired_differences": differences,
        "primary_endpoint": {
            "n": ns[-1],
            "kl": kl[-1],
            "metrics": list(primary_metrics),
            "baseline": baseline,
        },
        "backbone_norms": backbone,
        "best_of_n": best_of_n,
    }
    return summary, curves


def _drop_entry(drop: dict[str, Any], alternative: np.ndarray, strictest: float) -> dict[str, Any]:
    """A row's drop: value, interval, p-values, the adjusted label and its power against the alternative
    (simulated: the share of bootstrap worlds with a DROP_ALTERNATIVE drop whose drop is resolved) at 95 %
    (``power``: Holm's last step, an upper bound on the adjusted label's power) and at ``strictest``
    (``power_holm_strictest``: Holm's first step, α/m over the family's m comparisons, a lower bound)."""
    return {
        "gold_drop": drop["mean"],
        "gold_drop_ci": drop["ci"],
        "gold_drop_p_value": drop["p_value"],
        "gold_drop_p_adjusted": drop.get("p_adjusted"),
        "gold_drop_resolved": drop["resolved"],
        "gold_drop_power": {
            "alternative": DROP_ALTERNATIVE,
            "power": drop_power(alternative),
            "power_holm_strictest": drop_power(alternative, strictest),
            "strictest_level": strictest,
        },
    }


def latent_outliers(worlds: Sequence[World], name: str, ns: Sequence[int]) -> dict[str, Any]:
    """``latent_outliers`` of a row with latents (InfoRM), its own diagnostic (Miao et al. 2024): the share
    of its Best-of-n picks whose latent is an outlier of the policy's responses, per n.

    Per world, the reference is the latents of every sample of the Best-of-N pool (the policy's own
    responses, as InfoRM's reference is the SFT model's) and a sample is an outlier when its p-value
    1 − F_χ²(d)(d²) is below OUTLIER_LEVEL (``eval.latent.outlier_p_values``: InfoRM's Mahalanobis rule).
    The picks' rate at n is the unbiased best-of-n expectation of that indicator under the row's rewards,
    so n = 1 is the pool's own rate; ``rise`` is rate(largest n) − rate(1), paired by seed and prompt.
    Intervals: the two-stage bootstrap, crossed (every seed shares the prompts); secondary, unadjusted.
    The reference holds the points themselves, whose d² cannot exceed (m − 1)²/m for m latents: with m
    not far above d no sample can reach χ²(d)'s tail, and every rate is 0 (``reference_latents``)."""
    if worlds[0].members[name].latents is None:
        return {}
    per_seed = []
    for world in worlds:
        member = world.members[name]
        latents = member.latents.reshape(-1, member.latents.shape[-1])
        outlier = outlier_p_values(latents, latents) < OUTLIER_LEVEL
        per_seed.append(best_of_n_expectation(member.bon, outlier.reshape(member.bon.shape), ns))
    return {
        "latent_outliers": {
            "level": OUTLIER_LEVEL,
            "reference": "the latents of every Best-of-N pool sample (the policy's responses), per world",
            "reference_latents": int(np.prod(worlds[0].members[name].bon.shape)),
            "latent_dim": int(worlds[0].members[name].latents.shape[-1]),
            "ns": list(ns),
            "rate": [
                hierarchical_interval([s[:, k] for s in per_seed], crossed=True) for k in range(len(ns))
            ],
            "rise": hierarchical_interval([s[:, -1] - s[:, 0] for s in per_seed], crossed=True),
        }
    }
