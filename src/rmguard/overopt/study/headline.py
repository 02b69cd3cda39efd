"""The study's headline: the answer to its question first (which proxies over-optimize at the primary
endpoint, what each remedy gains against BT, with the power behind a "no"), then every comparison of the
primary endpoint with its Holm-adjusted label. ``report.json["headline"]`` and the report's first lines."""

from __future__ import annotations

from typing import Any

LABELS = {
    "bt": "BT",
    "bsr": "BSR λ=1e-3",
    "bsr_1e-2": "BSR λ=1e-2",
    "grm": "GRM (SFT reg.)",
    "odin": "ODIN (quality head)",
    "inform": "InfoRM",
    "rrm": "RRM (BT, augmented pairs)",
    "bt_length_calibrated": "BT, length-calibrated",
    "warm": "WARM (weight average of BT members)",
    "bt_ensemble": "BT ensemble (mean)",
    "bt_ensemble_wco": "BT ensemble (WCO)",
    "bt_ensemble_uwo": "BT ensemble (UWO)",
}
OVER = "95% two-stage bootstrap interval (seeds, then pairs/prompts within each seed)"
ENTRY_KEYS = ("mean", "ci", "mde", "p_value", "p_adjusted", "resolved")
ROW_KEYS = (
    "in_domain_accuracy",
    "shifted_tau_mean",
    "gold_drop",
    "gold_at_n1",
    "gold_at_max_n",
    "gold_peak_n",
    "control",
    "seeds",
    "lm_logprob",
)


def label(name: str) -> str:
    """A row's display name (the one the tables, figures and legends use)."""
    base, _, fraction = name.partition("@")
    return LABELS.get(base, base) + (f" ({fraction} of the pairs)" if fraction else "")


def pair_label(pair: str) -> str:
    a, _, b = pair.partition(" − ")
    return f"{label(a)} − {label(b)}"


def p_text(p: float | None) -> str:
    return "–" if p is None or p != p else f"{p:.2g}"


def comparisons(main: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """pair → metric → entry ({mean, ci, mde, p_value, p_adjusted, resolved}); ‖h‖ std per split is
    ``hidden_norm_std:<split>``. p_adjusted is None for a metric outside the primary endpoint."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for pair, metrics in main["paired_differences"].items():
        out[pair] = {}
        for metric, value in metrics.items():
            items = value.items() if metric == "hidden_norm_std" else [("", value)]
            for split, entry in items:
                key = f"{metric}:{split}" if split else metric
                out[pair][key] = {k: entry.get(k) for k in ENTRY_KEYS}
    return out


def objectives_table(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """row → its key statistics (``headline.objectives``) from one cell's analysis."""
    return {
        name: {
            **{k: v for k, v in o.items() if k.startswith(ROW_KEYS)},
            "gao_turns": o["gao_fit"]["turns"],
        }
        for name, o in summary["objectives"].items()
    }


def headline(
    config: Any,
    main: dict[str, Any],
    bon: Any,
    worlds: dict[str, Any],
    proxy_model: dict[str, Any],
    conditions: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """report.json["headline"]: the design, the primary endpoint, each row's key statistics, every paired
    comparison with its p-values and adjusted label, and the answer in words. ``conditions`` (label
    condition → its main-cell analysis, the first being ``main``'s) gives ``conditions`` (name → the
    objectives table) and, for every other condition, its own comparisons (its own Holm family)."""
    objectives = objectives_table(main)
    first = next(iter(next(iter(worlds.values())).values()))
    out = {
        "seeds": len(config.seeds),
        "bon_max_n": main["best_of_n"]["ns"][-1],
        "bon_max_kl": main["best_of_n"]["kl"][-1],
        "bon_pool_samples": int(bon.gold.shape[1]),
        "bon_prompts": int(bon.gold.shape[0]),
        "training_pairs_seed0": first["counts"]["train"]["pairs"],
        "primary_endpoint": main["primary_endpoint"],
        "proxy_model": proxy_model,
        "objectives": objectives,
        "paired_differences": comparisons(main),
        "intervals": OVER,
    }
    if conditions:
        out["conditions"] = {name: objectives_table(c) for name, c in conditions.items()}
        out["label_conditions"] = {
            name: {"wrong_label_share": c.get("wrong_label_share"), "main": c is main}
            for name, c in conditions.items()
        }
        out["condition_differences"] = {
            name: comparisons(c) for name, c in conditions.items() if c is not main
        }
    out["answer"] = answer(out)
    return out


def _names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _gold_sentence(h: dict[str, Any]) -> str:
    """One sentence per kind of result against BT in gold at the endpoint: gains, losses (each with its
    adjusted p), then the rows without a resolved difference (each with its MDE)."""
    found: dict[str, list[tuple[str, str]]] = {"gain": [], "lose": [], "none": []}
    for pair, metrics in h["paired_differences"].items():
        d = metrics.get("gold_at_max_n")
        if d is None:
            continue
        name = label(pair.partition(" − ")[0])
        if d["resolved"]:
            kind = "gain" if d["mean"] > 0 else "lose"
            found[kind].append((name, f"{d['mean']:+.3f}, adjusted p {d['p_adjusted']:.2g}"))
        else:
            found["none"].append((name, f"{d['mean']:+.3f}, MDE {d['mde']:.3f}"))
    at = f"at n = {h['bon_max_n']}"
    sentences = []
    for kind, rows in found.items():
        if not rows:
            continue
        names = _names([name for name, _ in rows])
        if len(rows) == 1:
            details = rows[0][1].replace(", ", " (", 1) + ")"
        else:
            details = "; ".join(f"{name} {d.replace(', ', ' (', 1)})" for name, d in rows)
        if kind == "none":
            others = "the other rows" if found["gain"] or found["lose"] else "any row"
            listed = details if len(rows) > 1 else f"{names} {details}"
            sentences.append(f"No resolved difference in gold against BT {at} for {others}: {listed}.")
        else:
            sentences.append(
                f"{names} {kind}{'s' if len(rows) == 1 else ''} gold against BT {at}: {details}."
            )
    return " ".join(sentences)


def _drop_sentence(h: dict[str, Any]) -> str:
    proxies = {n: o for n, o in h["objectives"].items() if not o["control"]}
    falling = [label(n) for n, o in proxies.items() if o["gold_drop_resolved"] and o["gold_drop"] > 0]
    powers = [o["gold_drop_power"] for o in proxies.values() if o.get("gold_drop_power")]
    low = [p.get("power_holm_strictest", p["power"]) for p in powers]
    high = [p["power"] for p in powers]
    power = (
        f" (power to resolve a drop of 0.02: {min(high):.0%}–{max(high):.0%} at 0.05, {min(low):.0%}–"
        f"{max(low):.0%} at Holm's strictest threshold)"
        if powers and all(p == p for p in low + high)
        else ""
    )
    controls = [label(n) for n, o in h["objectives"].items() if o["control"] and o["gold_drop_resolved"]]
    said = (
        f"Over-optimized (gold falls after its peak, Holm-resolved): {', '.join(falling)}"
        if falling
        else "No proxy's gold falls after its peak by a resolved amount"
    )
    return said + power + (f"; of the controls, {', '.join(controls)} fall." if controls else ".")


def _norm_sentence(h: dict[str, Any]) -> str:
    found: dict[str, list[str]] = {}
    for pair, metrics in h["paired_differences"].items():
        for metric, d in metrics.items():
            if metric.startswith("hidden_norm_std:") and d["resolved"]:
                found.setdefault(label(pair.partition(" − ")[0]), []).append(
                    f"{d['mean']:+.3f} on {metric.split(':')[1]}"
                )
    if not found:
        return "No remedy changes the spread of ‖h‖ against BT by a resolved amount."
    rows = "; ".join(f"{name} {', '.join(splits)}" for name, splits in found.items())
    return f"The spread of ‖h‖ (its std) differs from BT's by a resolved amount for {rows}."


def answer(h: dict[str, Any]) -> list[str]:
    """The study's answer in a few sentences: what over-optimizes, what each remedy gains against BT in
    gold (with the MDE where nothing is resolved), and what happens to ‖h‖; every label Holm-adjusted
    across the primary endpoint's comparisons."""
    design = (
        f"{h['seeds']} seeds, {h['bon_prompts']} held-out Best-of-N prompts × {h['bon_pool_samples']} samples, "
        f"n up to {h['bon_max_n']} (KL {h['bon_max_kl']:.2f} nats); proxies are {h['proxy_model']['layers']}-layer "
        f"reward models with the top {h['proxy_model']['trainable_layers']} trained."
    )
    sentences = [_drop_sentence(h), _gold_sentence(h), _norm_sentence(h), *_condition_sentences(h), design]
    return [s for s in sentences if s]


def _condition_sentences(h: dict[str, Any]) -> list[str]:
    """The answer under each label condition beside the main one (each its own Holm family)."""
    out = []
    for name, differences in h.get("condition_differences", {}).items():
        share = h["label_conditions"][name]["wrong_label_share"]
        view = {
            "objectives": h["conditions"][name],
            "paired_differences": differences,
            "bon_max_n": h["bon_max_n"],
        }
        said = f"{_drop_sentence(view)} {_gold_sentence(view)}".strip()
        out.append(
            f"Under the {name} condition ({share:.0%} of training labels against the gold; its own Holm "
            f"family): {said[0].lower()}{said[1:]}"
        )
    return out


def comparison_rows(h: dict[str, Any]) -> list[list[str]]:
    """Every comparison of the headline as table rows: comparison, metric, difference [CI], p, adjusted p,
    label (primary metrics carry the Holm label; the others say 'secondary')."""
    from rmguard.overopt.study.report import with_ci

    rows = [
        [
            label(name),
            "cross-fitted drop",
            with_ci(o["gold_drop"], o["gold_drop_ci"]),
            p_text(o.get("gold_drop_p_value")),
            p_text(o.get("gold_drop_p_adjusted")),
            "resolved" if o["gold_drop_resolved"] else "not resolved",
        ]
        for name, o in h["objectives"].items()
    ]
    for pair, metrics in h["paired_differences"].items():
        for metric, d in metrics.items():
            adjusted = d["p_adjusted"]
            verdict = "secondary" if adjusted is None else "resolved" if d["resolved"] else "not resolved"
            rows.append(
                [
                    pair_label(pair),
                    metric,
                    with_ci(d["mean"], d["ci"]),
                    p_text(d["p_value"]),
                    p_text(adjusted),
                    verdict,
                ]
            )
    return rows


def answer_html(h: dict[str, Any]) -> list[str]:
    """The report's opening: the answer, then the table of every comparison with its adjusted label."""
    import html

    from rmguard.overopt.study.report import _table

    return [
        "".join(f"<p class=lead>{html.escape(s)}</p>" for s in h["answer"]),
        "<h2>Every comparison of the primary endpoint</h2>",
        f"<p class=note>Primary endpoint, declared in the config: {', '.join(h['primary_endpoint']['metrics'])} at "
        f"n = {h['primary_endpoint']['n']}, against {label(h['primary_endpoint']['baseline'] or '')}. p from the "
        "bootstrap SE; adjusted: Holm across these comparisons; resolved = adjusted p < 0.05.</p>",
        _table(
            ["row or comparison", "metric", "value [95% CI]", "p", "adjusted p", "label"], comparison_rows(h)
        ),
    ]
