"""The demo's self-contained HTML report: a measured headline, then every figure and table, plots inline."""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

from rmguard.eval.evaluation import SCENARIO_COLUMNS
from rmguard.fileio import atomic_write_text
from rmguard.overopt.bon import Curves
from rmguard.overopt.plots import box_plot, data_uri, plot_bon, save_png

LABELS = {
    "bt": "BT",
    "bsr": "BSR λ=1e-3",
    "bsr_1e-2": "BSR λ=1e-2",
    "grm": "GRM (SFT reg.)",
    "bt_ensemble": "BT ensemble (mean)",
}
OVER = "95% bootstrap interval over seeds and pairs/prompts resampled together"
STYLE = """body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:0.9em}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
th:first-child,td:first-child{text-align:left}img{max-width:100%}.grid{display:flex;flex-wrap:wrap;gap:8px}
.grid img{width:48%}.lead{font-size:1.1em;line-height:1.5}.note{color:#555;font-size:0.9em}"""


def label(name: str) -> str:
    return LABELS.get(name, name)


def num(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def with_ci(mean: Any, ci: Any, digits: int = 3) -> str:
    if not ci or ci[0] is None or (isinstance(ci[0], float) and math.isnan(ci[0])):
        return num(mean, digits)
    return f"{num(mean, digits)} [{num(ci[0], digits)}, {num(ci[1], digits)}]"


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="{data_uri(png)}">'


def headline_sentence(headline: dict[str, Any]) -> str:
    """The report's first sentence: what Best-of-N did to each objective's gold, with intervals."""
    objectives = headline["objectives"]
    bt = objectives.get("bt")
    parts = []
    if bt:
        parts.append(
            f"Best-of-N against the BT proxy ({headline['seeds']} seeds, {headline['bon_prompts']} held-out prompts, "
            f"n up to {headline['bon_max_n']}, KL {headline['bon_max_kl']:.2f} nats) raised its own score from "
            f"{num(bt['proxy_at_n1'], 2)} to {num(bt['proxy_at_max_n'], 2)} while the gold score of its pick went "
            f"from {num(bt['gold_at_n1'])} to a peak of {with_ci(bt['gold_peak'], bt['gold_peak_ci'])} at "
            f"n = {bt['gold_peak_n']} and back to {with_ci(bt['gold_at_max_n'], bt['gold_at_max_n_ci'])} at "
            f"n = {headline['bon_max_n']}"
        )
    others = [
        f"{label(name)} {with_ci(o['gold_at_max_n'], o['gold_at_max_n_ci'])}"
        for name, o in objectives.items()
        if name != "bt"
    ]
    if others:
        parts.append("gold at the largest n for " + ", ".join(others))
    accuracy = ", ".join(
        f"{label(name)} {with_ci(o['in_domain_accuracy'], o['in_domain_accuracy_ci'])}"
        for name, o in objectives.items()
    )
    parts.append(f"in-domain accuracy on {headline['in_domain_pairs']} pairs: {accuracy}")
    return "; ".join(parts) + f" ({OVER})."


def _bon_section(summary: dict[str, Any], curves: Curves, out: Path) -> list[str]:
    bon = summary["best_of_n"]
    selectors = list(bon["curve_names"].values())
    (out / "bon").mkdir(parents=True, exist_ok=True)
    pngs = plot_bon(curves, out / "bon", "tokens", selectors)
    oracle = bon["oracle"]
    notes = [
        "At n = 1 every selector's expected pick is the pool's mean gold, so all curves start at the same point "
        f"({num(bon['gold_pool_mean'])}) by construction (unbiased best-of-n estimator over all "
        f"{bon['ns'][-1]} samples per prompt).",
        f"For comparison, picking by the gold itself reaches {num(oracle['gold_at_max_n'])} at n = {bon['ns'][-1]}.",
    ]
    for group in bon["coinciding"]:
        notes.append(
            "These curves coincide at every n and are drawn on top of each other: " + ", ".join(group) + "."
        )
    rows = []
    for name, obj in summary["objectives"].items():
        fit = obj["gao_fit"]
        rows.append(
            [
                label(name),
                num(obj["proxy_at_n1"], 2),
                num(obj["proxy_at_max_n"], 2),
                num(obj["gold_at_n1"]),
                f"{with_ci(obj['gold_peak'], obj['gold_peak_ci'])} at n={obj['gold_peak_n']} (KL {obj['gold_peak_kl']:.2f})",
                with_ci(obj["gold_at_max_n"], obj["gold_at_max_n_ci"]),
                f"α={num(fit['alpha'])}, β={num(fit['beta'])}, R²={num(fit['r2'], 2)}",
                f"KL {num(fit['peak_kl'], 2)}, gold {num(fit['peak_gold'])}",
            ]
        )
    return [
        _img(pngs["gold_vs_kl"], "gold reward of the pick vs KL"),
        "<p class=note>" + " ".join(html.escape(n) for n in notes) + "</p>",
        "<h3>Best-of-N per objective</h3>",
        _table(
            [
                "objective",
                "proxy n=1",
                f"proxy n={bon['ns'][-1]}",
                "gold n=1",
                "gold peak",
                f"gold n={bon['ns'][-1]}",
                "Gao fit gold(d)−gold(0)=d(α−βd)",
                "fitted peak",
            ],
            rows,
        ),
        f"<p class=note>Proxy columns: the proxy's own raw score of its pick (seed mean). Gold cells: {OVER}.</p>",
        "<div class=grid>" + "".join(_img(pngs[k], k) for k in ("proxy_vs_kl", "length_vs_kl")) + "</div>",
    ]


def _scenario_section(summary: dict[str, Any]) -> list[str]:
    rows = []
    for name, obj in summary["objectives"].items():
        cells = [with_ci(obj["scenarios"][f]["mean"], obj["scenarios"][f]["ci"]) for f in SCENARIO_COLUMNS]
        rows.append(
            [
                label(name),
                str(obj["seeds"]),
                *cells,
                with_ci(obj["shifted_tau_mean"], obj["shifted_tau_mean_ci"]),
            ]
        )
    return [
        "<h2>Four distribution-shift scenarios (Hong et al. 2025)</h2>",
        "<p class=note>In-domain: pairwise accuracy on training prompts and styles (pairs not trained on). "
        "Shifted: Kendall τ between proxy and gold over each prompt's responses, averaged over prompts; the last "
        f"column pools the three shifted scenarios' prompts. Cells: seed mean [{OVER}].</p>",
        _table(["objective", "seeds", *SCENARIO_COLUMNS.values(), "shifted τ (pooled)"], rows),
    ]


def _norm_section(summary: dict[str, Any], out: Path) -> list[str]:
    boxes, rows = {}, []
    for name, obj in summary["objectives"].items():
        for file, d in obj["hidden_norms"].items():
            if file != "all":
                boxes[f"{label(name)} · {SCENARIO_COLUMNS[file].split()[0]}"] = d["box"]
            rows.append(
                [
                    label(name),
                    "all scenarios" if file == "all" else SCENARIO_COLUMNS[file].split()[0],
                    num(d["std"], 2),
                    num(d["iqr"], 2),
                ]
            )
    if not boxes:
        return []
    png = save_png(
        box_plot(
            boxes, "‖h‖ at the reward token", "Hidden-state norm ‖h‖ per objective and scenario (all seeds)"
        ),
        out / "hidden_norms.png",
    )
    return [
        "<h2>Hidden-state norm dispersion</h2>",
        "<p class=note>The BSR paper's mechanism: BT lets ‖h‖ spread (its loss is unbounded in the reward scale); "
        "BSR's sum-to-zero penalty keeps rewards, and so hidden norms, together. Std and IQR of ‖h‖ over each "
        "scenario's responses, mean over seeds (the BT ensemble has no single hidden state).</p>",
        _img(png, "hidden norms"),
        _table(["objective", "responses", "‖h‖ std", "‖h‖ IQR"], rows),
    ]


def _difference_section(summary: dict[str, Any]) -> list[str]:
    rows = []
    for pair, metrics in summary["paired_differences"].items():
        for metric, d in metrics.items():
            rows.append(
                [
                    pair.replace("bt", "BT"),
                    metric,
                    with_ci(d["mean"], [d["low"], d["high"]]),
                    ", ".join(num(v) for v in d["per_seed"]),
                ]
            )
    return [
        "<h2>Paired differences against BT</h2>",
        "<p class=note>Seed s of each objective against seed s of BT on the same pairs or prompts; interval: "
        "paired bootstrap over seeds and units. An interval containing 0 means no difference was resolved.</p>",
        _table(["comparison", "metric", "difference [95% CI]", "per seed"], rows),
    ]


def _setup_section(summary: dict[str, Any]) -> list[str]:
    config, splits, labels = summary["config"], summary["splits"], summary["labels"]
    counts = splits["counts"]
    rows = [
        [
            "policy",
            f"{config['policy']} (SmolLM2-135M-Instruct); pool {'sampled in this run' if config['generate'] else 'shipped (rmguard demo --generate regenerates it)'}",
        ],
        ["gold", f"{summary['gold']} (programmatic rubric, docs/demo.md)"],
        [
            "training pairs",
            f"{counts['train']['pairs']} ({config['pair_strategy']}), {counts['train'].get('flipped', 0)} labels flipped ({config['label_noise']:.0%} noise)",
        ],
        [
            "proxies",
            f"{', '.join(label(o) for o in config['objectives'])} × seeds {config['seeds']}; "
            f"{config['proxy_model'] or config['policy']}, "
            f"{f'first {layers} layer(s)' if (layers := config['rm_layers']) else 'all layers'}"
            f"{', token embeddings frozen' if config.get('freeze_embeddings') else ''}; "
            f"{config['epochs']} epochs, lr {config['learning_rate']}, batch {config['batch_size']}",
        ],
        [
            "styles (models)",
            f"train: {', '.join(splits['train_models'])}; held out: {', '.join(splits['heldout_models'])}",
        ],
        ["labelled responses", f"{labels['responses']} responses, {labels['pairs']} pairs"],
        ["timings (s)", ", ".join(f"{k} {v}" for k, v in summary["timings_s"].items())],
    ]
    return ["<h2>Setup</h2>", _table(["", "value"], rows)]


def write_report(summary: dict[str, Any], curves: Curves, out: Path) -> Path:
    """report.html beside report.json; plots are also written as PNG files."""
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>rmguard demo</title><style>{STYLE}</style></head><body>",
        "<h1>rmguard demo: which reward models hold up under Best-of-N?</h1>",
        f"<p class=lead>{html.escape(headline_sentence(summary['headline']))}</p>",
        f"<p class=note>Measured in {summary['timings_s']['total']:.0f} s on this machine; every number is in "
        "report.json. They are what this run measured, whichever way they came out.</p>",
        *_bon_section(summary, curves, out),
        *_scenario_section(summary),
        *_norm_section(summary, out),
        *_difference_section(summary),
        *_setup_section(summary),
        "<p class=note>All artefacts (pool, labels, splits, proxies, scores, curves) are beside this file.</p></body></html>",
    ]
    path = out / "report.html"
    atomic_write_text(path, "\n".join(parts))
    return path
