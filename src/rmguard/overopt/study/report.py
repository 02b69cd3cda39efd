"""The study's self-contained HTML report: a headline that states only what the intervals establish, then
every figure and table (controls on each), plots inline."""

from __future__ import annotations

import html
import math
import time
from pathlib import Path
from typing import Any

from rmguard.eval.evaluation import SCENARIO_COLUMNS
from rmguard.fileio import atomic_write_json, atomic_write_text, read_json
from rmguard.overopt.bon import Curves
from rmguard.overopt.plots import data_uri, line_plot, plot_bon, save_png
from rmguard.overopt.study.design import BACKBONE, BASELINE
from rmguard.overopt.study.headline import OVER, answer_html, label, p_text, pair_label

STYLE = """body{font-family:system-ui,sans-serif;max-width:1040px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:0.85em}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
th:first-child,td:first-child{text-align:left}img{max-width:100%}.grid{display:flex;flex-wrap:wrap;gap:8px}
.grid img{width:48%}.lead{font-size:1.05em;line-height:1.5}.note{color:#555;font-size:0.9em}"""


def num(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:+.{digits}f}" if digits < 0 else f"{value:.{digits}f}"


def with_ci(mean: Any, ci: Any, digits: int = 3) -> str:
    if not ci or ci[0] is None or (isinstance(ci[0], float) and math.isnan(ci[0])):
        return num(mean, digits)
    return f"{num(mean, digits)} [{num(ci[0], digits)}, {num(ci[1], digits)}]"


def stat(d: dict[str, Any] | None, digits: int = 3) -> str:
    """mean [CI], and whether it is resolved: a describe() result as one cell."""
    if not d:
        return "–"
    return f"{with_ci(d['mean'], d['ci'], digits)} {'resolved' if d['resolved'] else 'not resolved'}"


def power_text(power: dict[str, Any]) -> str:
    """A drop's power against the alternative: at 95 % (Holm's most lenient step) and at α/m (its strictest)."""
    strict = power.get("power_holm_strictest")
    return f"{power['power']:.0%}" + ("" if strict is None else f" ({strict:.0%} at α/m)")


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="{data_uri(png)}">'


# ----------------------------------------------------------------------------------------------- sections


def _bon_section(summary: dict[str, Any], curves: Curves, out: Path) -> list[str]:
    bon = summary["best_of_n"]
    (out / "bon").mkdir(parents=True, exist_ok=True)
    pngs = plot_bon(displayed(curves), out / "bon", "tokens")
    rows = []
    for name, o in summary["objectives"].items():
        fit = o["gao_fit"]
        peak = (
            f"KL {with_ci(fit['peak_kl']['mean'], fit['peak_kl']['ci'], 2)}"
            if fit["turns"]
            else "no peak (does not turn)"
        )
        rows.append(
            [
                label(name),
                num(o["gold_at_n1"]),
                with_ci(o["gold_at_max_n"], o["gold_at_max_n_ci"]),
                f"{with_ci(o['gold_drop'], o['gold_drop_ci'])} {'resolved' if o['gold_drop_resolved'] else 'not resolved'}",
                power_text(o["gold_drop_power"]),
                with_ci(fit["alpha"]["mean"], fit["alpha"]["ci"]),
                with_ci(fit["beta"]["mean"], fit["beta"]["ci"]),
                peak,
            ]
        )
    return [
        "<h2>Best-of-N</h2>",
        _img(pngs["gold_vs_kl"], "gold reward of the pick vs KL"),
        f"<p class=note>Unbiased best-of-n estimator over each prompt's {summary['headline']['bon_pool_samples']} "
        f"samples; n stops at {bon['ns'][-1]}, well below the pool, so every point averages many subsets. The grid "
        f"(log-spaced): n = {', '.join(str(n) for n in bon['ns'])}; KL_BoN = "
        f"{', '.join(f'{k:.2f}' for k in bon['kl'])} nats. At n = 1 "
        "every selector's pick is the pool's mean gold by construction. The proxy's own score of its pick rises "
        "with n by construction and is not a finding.</p>",
        _table(
            [
                "row",
                "gold n=1",
                f"gold n={bon['ns'][-1]}",
                "cross-fitted drop (peak − end)",
                "power at a drop of 0.02",
                "Gao α",
                "Gao β",
                "fitted peak",
            ],
            rows,
        ),
        "<p class=note>Drop: the peak n is chosen on one half of the prompts and peak − end measured on the "
        f"other half, then swapped and averaged; {OVER}; resolved = Holm-adjusted p < 0.05 across the primary "
        "endpoint's comparisons. Power: the share of bootstrap worlds, drawn with the gold lowered linearly "
        "after the peak by 0.02 at the last n, whose drop would be resolved at 95 % (Holm's most lenient step) "
        "and, in brackets, at 0.05/m (its strictest, m the family's comparisons). Gao fit gold(d) − gold(0) = "
        "d(α − βd), d = √KL, with the same bootstrap; a peak is reported only when the drop is resolved, β's "
        "interval is above 0 and the vertex lies inside the measured KL.</p>",
        *_difference_figure(bon, out),
        "<div class=grid>" + "".join(_img(pngs[k], k) for k in ("proxy_vs_kl", "length_vs_kl")) + "</div>",
    ]


def displayed(curves: Curves) -> Curves:
    """The curves under their display names (the tables' names), for figures and legends."""
    return Curves(
        curves.ns,
        curves.kl,
        {label(n): c for n, c in curves.curves.items()},
        {label(n): k for n, k in curves.kinds.items()},
        {label(n): s for n, s in curves.seeds.items()},
        level=curves.level,
    )


def _difference_figure(bon: dict[str, Any], out: Path) -> list[str]:
    """Gold of each row's pick minus BT's at every n, paired by seed and prompt with its interval: the
    curves that lie within 0.01 of each other in the main figure, told apart."""
    differences = bon.get("gold_minus_baseline")
    if not differences:
        return []
    bands = {
        label(name): (
            bon["kl"],
            [d["mean"] for d in rows],
            [d["ci"][0] for d in rows],
            [d["ci"][1] for d in rows],
        )
        for name, rows in differences.items()
    }
    figure = line_plot(
        bands,
        "KL_BoN = log n − (n−1)/n  (nats)",
        f"gold of the pick − {label(BASELINE)}'s",
        f"Best-of-n: gold against {label(BASELINE)} at each n\npaired by seed and prompt; bands: {OVER}",
    )
    figure.axes[0].axhline(0.0, color="black", linewidth=0.8)
    png = save_png(figure, out / "bon" / "gold_minus_bt_vs_kl.png")
    return [_img(png, f"gold minus {label(BASELINE)} vs KL")]


def _conditions_section(h: dict[str, Any]) -> list[str]:
    """The main cell under each label condition side by side: every row's gold at the endpoint, its drop
    with its label and power, and its gold against BT (each condition its own Holm family)."""
    conditions = h.get("conditions") or {}
    if len(conditions) < 2:
        return []
    differences = {
        name: h["paired_differences"] if meta["main"] else h["condition_differences"][name]
        for name, meta in h["label_conditions"].items()
    }
    rows = []
    for row in next(iter(conditions.values())):
        cells = [label(row)]
        for name, table in conditions.items():
            o = table[row]
            against = differences[name].get(f"{row} − {BASELINE}", {}).get("gold_at_max_n")
            cells += [
                with_ci(o["gold_at_max_n"], o["gold_at_max_n_ci"]),
                f"{with_ci(o['gold_drop'], o['gold_drop_ci'])} {'resolved' if o['gold_drop_resolved'] else 'not resolved'}",
                power_text(o["gold_drop_power"]),
                stat(against) if against else "–",
            ]
        rows.append(cells)
    shares = "; ".join(
        f"{name}: {meta['wrong_label_share']:.1%} of training labels against the gold"
        for name, meta in h["label_conditions"].items()
    )
    columns = ["gold at n max", "drop (peak − end)", "power at 0.02", f"gold − {label(BASELINE)}"]
    return [
        "<h2>Label conditions side by side</h2>",
        "<p class=note>The main cell's rows trained under each label condition, declared in the config before "
        "the run: uniform noise flips each training pair with its probability; the length-biased condition "
        "decides that share of the pairs whose responses differ in length (characters) by length, the longer "
        f"one better, so only those where the gold prefers the shorter response end up wrong ({shares}). Same "
        "seeds and splits; only the training labels differ. The headline's answer is the first condition's; "
        f"each condition is its own Holm family. {OVER}.</p>",
        _table(["row", *(f"{c} · {n}" for n in conditions for c in columns)], rows),
    ]


def _latent_section(summary: dict[str, Any]) -> list[str]:
    """InfoRM's own diagnostic: how many of its Best-of-N picks are latent outliers of the policy's samples."""
    rows, level = [], None
    for name, o in summary["objectives"].items():
        outliers = o.get("latent_outliers")
        if not outliers:
            continue
        rates, rise, level = outliers["rate"], outliers["rise"], outliers["level"]
        rows.append(
            [
                label(name),
                *(with_ci(rates[k]["mean"], rates[k]["ci"]) for k in (0, -1)),
                f"{with_ci(rise['mean'], rise['ci'])} {'resolved' if rise['resolved'] else 'not resolved'}",
                p_text(rise["p_value"]),
            ]
        )
    if not rows:
        return []
    ns = summary["best_of_n"]["ns"]
    return [
        "<h2>InfoRM's latent outliers among the Best-of-N picks (Miao et al. 2024)</h2>",
        "<p class=note>InfoRM flags reward hacking as responses whose latent (μ of its bottleneck) lies far "
        "from the policy's: squared Mahalanobis distance to the latents of every sample of the pool (mean and "
        f"covariance + 1e-3·I, per seed), outlier when 1 − F_χ²(d) < {level:g}. The share "
        "of InfoRM's picks that are outliers, as the unbiased best-of-n expectation (n = 1: the pool's own "
        f"share); rise = n={ns[-1]} − n=1 paired by seed and prompt; {OVER}; secondary (not in the Holm "
        "family). Every n is in report.json.</p>",
        _table(["row", "outliers n=1", f"outliers n={ns[-1]}", f"rise n=1 → {ns[-1]}", "p"], rows),
    ]


def _scenario_section(summary: dict[str, Any]) -> list[str]:
    rows = []
    for name, o in summary["objectives"].items():
        cells = [with_ci(o["scenarios"][f]["mean"], o["scenarios"][f]["ci"]) for f in SCENARIO_COLUMNS]
        rows.append([label(name), *cells, with_ci(o["shifted_tau_mean"], o["shifted_tau_mean_ci"])])
    return [
        "<h2>Four distribution-shift scenarios (Hong et al. 2025)</h2>",
        "<p class=note>In-domain: pairwise accuracy on training prompts and styles (pairs not trained on). "
        "Shifted: Kendall τ between proxy and gold per prompt, averaged; the last column pools the three shifted "
        f"scenarios. Each seed has its own splits. Cells: mean [{OVER}]. The oracle is the gold itself.</p>",
        _table(["row", *SCENARIO_COLUMNS.values(), "shifted τ (pooled)"], rows),
    ]


def _norm_section(summary: dict[str, Any]) -> list[str]:
    rows = []
    entries = {BACKBONE: summary.get("backbone_norms") or {}} | {
        n: o["hidden_norms"] for n, o in summary["objectives"].items() if o["hidden_norms"]
    }
    for name, files in entries.items():
        rows.append(
            [
                label(name),
                *(with_ci(files[f]["mean"], files[f]["ci"]) for f in SCENARIO_COLUMNS if f in files),
            ]
        )
    if len(entries) < 2:
        return []
    return [
        "<h2>Hidden-state norm dispersion</h2>",
        "<p class=note>The BSR paper's mechanism: the std of ‖h‖ at the reward token over each split's "
        "responses, one value per seed, mean [95% bootstrap over seeds]. Splits are not pooled. The first row "
        "is the untrained model (every proxy's h at its start, all layers as pretrained); the trained top layers "
        "and final norm are where ‖h‖ can spread.</p>",
        _table(["row", *(SCENARIO_COLUMNS[f].split()[0] for f in SCENARIO_COLUMNS)], rows),
    ]


def _difference_section(summary: dict[str, Any]) -> list[str]:
    rows = []
    for pair, metrics in summary["paired_differences"].items():
        for metric, d in metrics.items():
            items = d.items() if metric == "hidden_norm_std" else [("", d)]
            for file, dd in items:
                label_ = (
                    stat(dd)
                    if dd.get("p_adjusted") is not None
                    else f"{with_ci(dd['mean'], dd['ci'])} secondary"
                )
                rows.append(
                    [
                        pair_label(pair),
                        f"{metric} {file}".strip(),
                        label_,
                        p_text(dd.get("p_value")),
                        p_text(dd.get("p_adjusted")),
                        num(dd["mde"]),
                    ]
                )
    return [
        f"<h2>Paired differences against {label(BASELINE)}</h2>",
        "<p class=note>Seed s of each row against seed s of BT (the same world) on the same pairs or prompts; "
        f"{OVER}. p from the bootstrap SE (two-sided); adjusted: Holm across the primary endpoint's "
        "comparisons, resolved = adjusted p < 0.05; a metric outside the primary endpoint is 'secondary'. MDE: "
        "the smallest true difference this design detects with 80 % power at 95 %.</p>",
        _table(["comparison", "metric", "difference [95% CI]", "p", "adjusted p", "MDE"], rows),
    ]


def _sweep_section(summary: dict[str, Any], sweep_curves: dict[str, Curves], out: Path) -> list[str]:
    if not summary.get("sweep"):
        return []
    parts = [
        "<h2>Proxy data size (Gao et al. 2023)</h2>",
        "<p class=note>The sweep objectives trained on nested fractions of each seed's training pairs, at each "
        f"label-noise level; Gao's α and β per size, with the drop; {OVER}.</p>",
    ]
    rows = []
    for cell, result in summary["sweep"].items():
        for name, o in result["objectives"].items():
            fit = o["gao_fit"]
            rows.append(
                [
                    cell,
                    label(name),
                    with_ci(fit["alpha"]["mean"], fit["alpha"]["ci"]),
                    with_ci(fit["beta"]["mean"], fit["beta"]["ci"]),
                    "yes" if fit["turns"] else "no",
                    f"{with_ci(o['gold_drop'], o['gold_drop_ci'])}",
                    with_ci(o["gold_at_max_n"], o["gold_at_max_n_ci"]),
                ]
            )
    parts.append(_table(["cell", "row", "α", "β", "turns", "drop", "gold at max n"], rows))
    merged = Curves(
        next(iter(sweep_curves.values())).ns,
        next(iter(sweep_curves.values())).kl,
        {f"{label(n)} · {c}": v for c, cv in sweep_curves.items() for n, v in cv.curves.items()},
        {f"{label(n)} · {c}": "proxy" for c, cv in sweep_curves.items() for n in cv.curves},
        {f"{label(n)} · {c}": s for c, cv in sweep_curves.items() for n, s in cv.seeds.items()},
    )
    (out / "sweep").mkdir(parents=True, exist_ok=True)
    parts.append(_img(plot_bon(merged, out / "sweep", "tokens")["gold_vs_kl"], "gold vs KL per data size"))
    return parts


def _setup_section(summary: dict[str, Any]) -> list[str]:
    config, model = summary["config"], summary["headline"]["proxy_model"]
    rows = [
        ["policy", f"{config['policy']}; pool {'sampled in this run' if config['generate'] else 'shipped'}"],
        ["gold", str(summary["gold"])],
        [
            "proxies",
            f"trained by rmguard's trainer: {', '.join(label(o) for o in config['objectives'])} × seeds "
            f"{config['seeds']}",
        ],
        [
            "backbone",
            f"{config['proxy_model'] or config['policy']}, all {model['layers']} layers, the top "
            f"{model['trainable_layers']} trained under the reward head (heads: "
            + ", ".join(f"{label(o)} {h}" for o, h in model["heads"].items())
            + ")",
        ],
        [
            "label noise",
            ", ".join(f"{n:g}" for n in [config["label_noise"], *(config["label_noises"] or [])]),
        ],
        [
            "length bias (declared)",
            "none" if not config.get("length_bias") else f"p = {config['length_bias']:g}",
        ],
        ["timings (s)", ", ".join(f"{k} {v}" for k, v in summary["timings_s"].items())],
    ]
    return ["<h2>Setup</h2>", _table(["", "value"], rows)]


RUNS_FILE = "runs.json"


def record_run(out: Path, timings: dict[str, float] | None) -> list[dict[str, Any]]:
    """Every run of this folder, oldest first, each labelled (``first run``, ``resumption 1``, …) with its
    own timings: None starts this run's entry (an interrupted run keeps ``finished: false``), timings end
    it. A rerun that reuses finished work thus never replaces the first run's cost."""
    path = out / RUNS_FILE
    runs = read_json(path) if path.is_file() else []
    if timings is None:
        label = "first run" if not runs else f"resumption {len(runs)}"
        runs.append(
            {"label": label, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "finished": False}
        )
    else:
        runs[-1].update(finished=True, timings_s=timings)
    atomic_write_json(path, runs)
    return runs


def cost(summary: dict[str, Any]) -> str:
    """What the run cost, run by run: the first run's wall time and each resumption's, labelled."""
    runs = summary.get("runs") or [{"label": "this run", "timings_s": summary["timings_s"]}]
    parts = [
        f"{r['label']} {r['timings_s']['total']:.0f} s wall"
        if r.get("timings_s")
        else f"{r['label']} interrupted"
        for r in runs
    ]
    return "Measured on this machine: " + ", ".join(parts)


def write_report(summary: dict[str, Any], curves: Curves, sweep_curves: dict[str, Curves], out: Path) -> Path:
    """report.html beside report.json; plots are also written as PNG files."""
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>rmguard study</title><style>{STYLE}</style></head><body>",
        "<h1>rmguard study: which reward models hold up under Best-of-N?</h1>",
        *answer_html(summary["headline"]),
        f"<p class=note>{html.escape(cost(summary))}; every number is in report.json, whichever way it came "
        "out.</p>",
        *_bon_section(summary, curves, out),
        *_conditions_section(summary["headline"]),
        *_latent_section(summary),
        *_scenario_section(summary),
        *_norm_section(summary),
        *_difference_section(summary),
        *_sweep_section(summary, sweep_curves, out),
        *_setup_section(summary),
        "</body></html>",
    ]
    path = out / "report.html"
    atomic_write_text(path, "\n".join(parts))
    return path
