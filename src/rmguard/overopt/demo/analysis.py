"""From the proxies' scores to the demo's numbers: scenarios, norm dispersion, Best-of-N, Gao fits, paired
differences and the headline. Pure functions of arrays; every interval is a percentile bootstrap (inside the
statistic's range) and names what it resamples.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rmguard.eval.eval_sets import EvalSet, pair_correct, prompt_correlations
from rmguard.eval.intervals import paired_difference, seeds_and_units_interval
from rmguard.eval.splits import SHIFTED_SCENARIOS
from rmguard.overopt.bon import Curves, Proxy, best_of_n_curves, ensemble, gao_fit

BASELINE = "bt"


def _groups(config: Any, scores: dict[str, dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """objective or ensemble name → its members' scores, one entry per seed (an ensemble is one member)."""
    from rmguard.overopt.demo.pipeline import ENSEMBLES, proxy_name

    groups = {o: [scores[proxy_name(o, s)] for s in config.seeds] for o in config.objectives}
    for name, objective in ENSEMBLES.items():
        if objective in groups and len(groups[objective]) > 1:
            groups[name] = [mean_ensemble(groups[objective])]
    return groups


def mean_ensemble(members: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The mean of the members' standardized rewards (BT rewards are defined up to shift and scale, so each
    member is first put in units of its own standard deviation over everything it scored)."""
    names = list(members[0]["files"])
    flat = [np.concatenate([m["files"][f][0] for f in names] + [m["bon"].ravel()]) for m in members]
    mean = ensemble(flat, "mean")
    out: dict[str, Any] = {"files": {}, "ensemble": True}
    offset = 0
    for f in names:
        size = len(members[0]["files"][f][0])
        out["files"][f] = (mean[offset : offset + size], None)
        offset += size
    out["bon"] = mean[offset:].reshape(members[0]["bon"].shape)
    return out


def _interval(matrix: np.ndarray) -> dict[str, Any]:
    mean, low, high = seeds_and_units_interval(matrix, "both")
    return {"mean": mean, "ci": [low, high]}


def _per_seed(row: np.ndarray) -> dict[str, Any]:
    """One proxy's mean with its bootstrap interval over units (pairs)."""
    mean, low, high = seeds_and_units_interval(row[None, :], "units")
    return {"mean": mean, "ci": [low, high]}


def unit_values(sets: Sequence[EvalSet], members: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """file → [seeds, units]: per-pair correctness for the in-domain pairs, per-prompt τ elsewhere."""
    values = {}
    for s in sets:
        per = pair_correct if s.kind == "pairs" else prompt_correlations
        values[s.name] = np.stack([per(s, m["files"][s.name][0]) for m in members])
    values["shifted"] = np.concatenate([values[f] for f in SHIFTED_SCENARIOS if f in values], axis=1)
    return values


def norm_dispersion(members: list[dict[str, Any]], files: Sequence[str]) -> dict[str, Any]:
    """Std and IQR of ‖h‖ per file and over all files, averaged over seeds (with each seed's values)."""
    if any(m.get("ensemble") for m in members):
        return {}
    out = {}
    for name in [*files, "all"]:
        norms = [
            np.concatenate([m["files"][f][1] for f in files]) if name == "all" else m["files"][name][1]
            for m in members
        ]
        std = [float(np.std(n)) for n in norms]
        iqr = [float(np.subtract(*np.quantile(n, [0.75, 0.25]))) for n in norms]
        box = np.quantile(np.concatenate(norms), [0.0, 0.25, 0.5, 0.75, 1.0]).tolist()
        out[name] = {
            "std": float(np.mean(std)),
            "iqr": float(np.mean(iqr)),
            "std_per_seed": std,
            "iqr_per_seed": iqr,
            "box": box,
        }
    return out


def bon_curves(groups: dict[str, list[dict[str, Any]]], bon: dict[str, Any]) -> tuple[Curves, dict[str, str]]:
    """Best-of-N curves of every objective (seed mean) and ensemble; returns (curves, name → curve name)."""
    proxies = [  # a group of one (the ensemble) is its own curve, under its own name
        Proxy(f"{name}-{k}" if len(members) > 1 else name, name, member["bon"])
        for name, members in groups.items()
        for k, member in enumerate(members)
    ]
    curves = best_of_n_curves(proxies, bon["gold"], bon["tokens"])
    names = {
        name: (f"{name} (mean of {len(members)} seeds)" if len(members) > 1 else name)
        for name, members in groups.items()
    }
    return curves, names


def bon_per_prompt(
    curves_members: list[dict[str, Any]], gold: np.ndarray, tokens: np.ndarray, ns: list[int]
) -> np.ndarray:
    """[seeds, prompts] expected gold of the proxy's best at the largest n."""
    from rmguard.overopt.bon import pick_metrics

    return np.stack([pick_metrics(m["bon"], gold, tokens, ns[-1:])["gold"][:, 0] for m in curves_members])


def _bon_summary(curves: Curves, name: str) -> dict[str, Any]:
    rows = curves.curves[name]
    gold = [r["mean"] for r in rows["gold"]]
    peak = int(np.argmax(gold))
    fit = gao_fit(curves.kl, gold)
    return {
        "proxy_at_n1": rows["proxy"][0]["mean"],
        "proxy_at_max_n": rows["proxy"][-1]["mean"],
        "proxy_z_at_max_n": rows["proxy_z"][-1]["mean"],
        "gold_at_n1": gold[0],
        "gold_peak": gold[peak],
        "gold_peak_ci": [rows["gold"][peak]["both_low"], rows["gold"][peak]["both_high"]],
        "gold_peak_n": curves.ns[peak],
        "gold_peak_kl": curves.kl[peak],
        "gold_at_max_n": gold[-1],
        "gold_at_max_n_ci": [rows["gold"][-1]["both_low"], rows["gold"][-1]["both_high"]],
        "proxy_rises": bool(
            all(
                b >= a
                for a, b in zip([r["mean"] for r in rows["proxy"]], [r["mean"] for r in rows["proxy"]][1:])
            )
        ),
        "gao_fit": fit,
    }


def coinciding(curves: Curves, names: Sequence[str], tolerance: float = 1e-9) -> list[list[str]]:
    """Groups of selectors whose gold curves are identical at every n (they are drawn on top of each other)."""
    groups: list[list[str]] = []
    for name in names:
        gold = np.array([r["mean"] for r in curves.curves[name]["gold"]])
        for group in groups:
            other = np.array([r["mean"] for r in curves.curves[group[0]]["gold"]])
            if np.max(np.abs(gold - other)) <= tolerance:
                group.append(name)
                break
        else:
            groups.append([name])
    return [g for g in groups if len(g) > 1]


def analyse(
    config: Any, sets: Sequence[EvalSet], scores: dict[str, dict[str, Any]], bon: dict[str, Any]
) -> dict[str, Any]:
    """Every number of the report (see the module docstring); ``headline`` is the report's first sentence's data."""
    groups = _groups(config, scores)
    files = [s.name for s in sets]
    curves, curve_names = bon_curves(groups, bon)
    objectives: dict[str, Any] = {}
    units: dict[str, dict[str, np.ndarray]] = {}
    gold_max: dict[str, np.ndarray] = {}
    for name, members in groups.items():
        units[name] = unit_values(sets, members)
        gold_max[name] = bon_per_prompt(members, bon["gold"], bon["tokens"], curves.ns)
        scenario = {f: _interval(units[name][f]) for f in files}
        norms = norm_dispersion(members, files)
        objectives[name] = {
            "seeds": len(members) if not members[0].get("ensemble") else f"mean of {len(config.seeds)} seeds",
            "in_domain_accuracy": scenario[files[0]]["mean"],
            "in_domain_accuracy_ci": scenario[files[0]]["ci"],
            "in_domain_accuracy_per_seed": [_per_seed(row) for row in units[name][files[0]]],
            "shifted_tau_mean": _interval(units[name]["shifted"])["mean"],
            "shifted_tau_mean_ci": _interval(units[name]["shifted"])["ci"],
            "hidden_norm_std": norms.get("all", {}).get("std"),
            "hidden_norm_iqr": norms.get("all", {}).get("iqr"),
            **_bon_summary(curves, curve_names[name]),
            "scenarios": scenario,
            "hidden_norms": norms,
        }
    differences = {}
    if BASELINE in units:
        for name in groups:
            if name == BASELINE or units[name][files[0]].shape != units[BASELINE][files[0]].shape:
                continue
            differences[f"{name} − {BASELINE}"] = {
                "in_domain_accuracy": paired_difference(units[name][files[0]], units[BASELINE][files[0]]),
                "shifted_tau_mean": paired_difference(units[name]["shifted"], units[BASELINE]["shifted"]),
                "gold_at_max_n": paired_difference(gold_max[name], gold_max[BASELINE]),
            }
    headline = {
        "seeds": len(config.seeds),
        "bon_max_n": curves.ns[-1],
        "bon_max_kl": curves.kl[-1],
        "bon_prompts": int(bon["gold"].shape[0]),
        "in_domain_pairs": int(units[next(iter(units))][files[0]].shape[1]),
        "objectives": {
            k: {key: v for key, v in o.items() if key not in ("scenarios", "hidden_norms")}
            for k, o in objectives.items()
        },
        "intervals": "95% percentile bootstrap over seeds and units (pairs or prompts) resampled together",
    }
    return {
        "headline": headline,
        "objectives": objectives,
        "paired_differences": differences,
        "best_of_n": {
            "ns": curves.ns,
            "kl": curves.kl,
            "prompts": int(bon["gold"].shape[0]),
            "curve_names": curve_names,
            "curves": curves.curves,
            "what": curves.kinds,
            "seeds": curves.seeds,
            "coinciding": coinciding(curves, list(curve_names.values())),
            "gold_pool_mean": float(bon["gold"].mean()),
            "oracle": _bon_summary(curves, "gold (oracle)"),
        },
        "_curves": curves,
    }
