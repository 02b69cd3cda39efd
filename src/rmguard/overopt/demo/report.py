"""The demo's self-contained HTML report: every plot inline (base64 PNG), every number with its interval."""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

from rmguard.fileio import atomic_write_text
from rmguard.overopt.plots import data_uri

SCENARIOS = {
    "val1_in_domain": "In-domain acc",
    "val2_prompt_disjoint": "Prompt-disjoint τ",
    "val3_response_disjoint": "Response-disjoint τ",
    "val4_mutual_disjoint": "Mutual-disjoint τ",
}
STYLE = """body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:0.9em}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
th:first-child,td:first-child{text-align:left}img{max-width:100%}.grid{display:flex;flex-wrap:wrap;gap:8px}
.grid img{width:48%}code{background:#f4f4f4;padding:1px 4px}.note{color:#555;font-size:0.9em}"""


def _num(value: Any, digits: int = 3) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _interval(mean: Any, low: Any, high: Any) -> str:
    if low is None or (isinstance(low, float) and math.isnan(low)):
        return _num(mean)
    return f"{_num(mean)} [{_num(low)}, {_num(high)}]"


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="{data_uri(png)}">'


def _pick(curve: dict[str, list[dict[str, float]]], index: int, seeds: int) -> str:
    row = curve["gold"][index]
    side = "seed" if seeds > 1 else "prompt"
    return _interval(row["mean"], row[f"{side}_low"], row[f"{side}_high"])


def headline(bon: dict[str, Any]) -> list[str]:
    """One measured sentence per RM kind: gold of the proxy's pick at n=1, at the peak and at n=N."""
    lines = []
    last = len(bon["ns"]) - 1
    for name, what in bon["what"].items():
        if what != "kind":
            continue
        curve, seeds, peak = bon["curves"][name], bon["seeds"][name], bon["gold_peak"][name]
        change = curve["gold"][last]["mean"] - curve["gold"][0]["mean"]
        lines.append(
            f"{name}: gold of the proxy's pick {_pick(curve, 0, seeds)} at n=1 → {_pick(curve, last, seeds)} at "
            f"n={bon['ns'][-1]} (change {change:+.3f}); mean gold peaks at n={peak['peak_n']} "
            f"(KL {peak['peak_kl']:.2f}) and falls by {peak['drop_after_peak']:.3f} after it."
        )
    return lines


def write_report(
    summary: dict[str, Any], bon_pngs: dict[str, bytes], diagnostics_dir: Path, out: Path
) -> Path:
    config, bon, labels, splits = (
        summary["config"],
        summary["best_of_n"],
        summary["labels"],
        summary["splits"],
    )
    level = "95%"
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>rmguard demo</title><style>{STYLE}</style></head><body>",
        "<h1>rmguard demo: do robust reward models get over-optimized less?</h1>",
        f"<p class=note>Measured on this machine in {summary['timings_s']['total']:.0f} s. Numbers are means with "
        f"{level} intervals (t across seeds where a row averages seeds, across prompts otherwise; bootstrap over "
        "prompts/pairs in the evaluation table). They are what this run measured, whichever way they came out; "
        "with this few prompts and seeds, overlapping intervals mean no difference was resolved.</p>",
        "<h2>Result</h2><ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in headline(bon)) + "</ul>",
        _img(bon_pngs["gold_vs_kl"], "gold reward vs KL"),
    ]
    peak_rows = []
    for name, peak in bon["gold_peak"].items():
        curve, seeds = bon["curves"][name], bon["seeds"][name]
        peak_index = bon["ns"].index(peak["peak_n"])
        peak_rows.append(
            [
                name,
                str(seeds),
                str(peak["peak_n"]),
                _num(peak["peak_kl"], 2),
                _pick(curve, peak_index, seeds),
                _pick(curve, len(bon["ns"]) - 1, seeds),
                _num(peak["drop_after_peak"]),
            ]
        )
    parts += [
        "<h3>Best-of-N: where the gold peaks</h3>",
        _table(
            [
                "selector",
                "seeds",
                "peak n",
                "peak KL",
                "gold at peak",
                f"gold at n={bon['ns'][-1]}",
                "drop after peak",
            ],
            peak_rows,
        ),
        "<div class=grid>"
        + "".join(_img(bon_pngs[k], k) for k in ("proxy_vs_kl", "gap_vs_kl", "length_vs_kl"))
        + "</div>",
    ]

    results = summary["evaluation"]["results"]
    rows = []
    for model, by_file in results.items():
        rows.append(
            [model]
            + [
                _interval(
                    by_file[f][by_file[f]["primary"]],
                    by_file[f].get(f"{by_file[f]['primary']}_ci_low"),
                    by_file[f].get(f"{by_file[f]['primary']}_ci_high"),
                )
                if f in by_file
                else "–"
                for f in SCENARIOS
            ]
        )
    from rmguard.eval.intervals import t_interval

    kinds = sorted({m.split("-seed")[0] for m in results})
    for kind in kinds:
        members = [by_file for m, by_file in results.items() if m.split("-seed")[0] == kind]
        cells = []
        for f in SCENARIOS:
            values = [b[f][b[f]["primary"]] for b in members if f in b]
            cells.append(_interval(*t_interval(values)) if values else "–")
        rows.append([f"{kind} (mean of {len(members)} seeds, t interval)"] + cells)
    parts += [
        "<h2>Four robustness scenarios (Hong et al. 2025)</h2>",
        "<p class=note>In-domain: pairwise accuracy on held-in prompts and styles; the others: Kendall τ between proxy "
        "and gold per prompt, averaged. Cells: value [95% bootstrap interval].</p>",
        _table(["reward model", *SCENARIOS.values()], rows),
    ]

    diag = summary["diagnostics"]["models"]
    drows = []
    for model, entry in diag.items():
        for file, d in entry["files"].items():
            drows.append(
                [
                    model,
                    file,
                    _num(d["hidden_norm"]["mean"], 2),
                    _num(d["hidden_norm"]["std"], 2),
                    _num(d["effective_rank"], 1),
                    _num(entry.get("head_norm"), 3),
                ]
            )
    parts += [
        "<h2>Diagnostics</h2>",
        _table(["reward model", "data", "‖h‖ mean", "‖h‖ std", "effective rank", "‖W_p‖"], drows),
        "<div class=grid>"
        + "".join(_img(p.read_bytes(), p.stem) for p in sorted(diagnostics_dir.glob("*.png")))
        + "</div>",
    ]

    parts += [
        "<h2>Setup</h2>",
        _table(
            ["", "value"],
            [
                [
                    "policy",
                    f"{config['policy']} (SmolLM2-135M-Instruct), responses of at most {config['max_new_tokens']} tokens",
                ],
                [
                    "reward-model backbone",
                    f"SmolLM2-135M-Instruct cut to its first {config['rm_layers']} of 30 layers (for speed)",
                ],
                [
                    "gold reward",
                    f"{summary['gold']}: share of the prompt's verifiable instructions satisfied − 0.5 × repeated-trigram share",
                ],
                [
                    "prompts",
                    f"{config['prompts']} shipped demo prompts; {splits['prompts']['heldout']} held out",
                ],
                [
                    'styles ("models")',
                    f"{', '.join(splits['train_models'])}; held out: {', '.join(splits['heldout_models'])}",
                ],
                [
                    "training pairs",
                    f"{splits['counts']['train']['pairs']} (best vs worst), {splits['counts']['train'].get('flipped', 0)} "
                    f"labels flipped (noise {config['label_noise']:.0%})",
                ],
                [
                    "proxies",
                    f"BT, BSR (λ=1e-3), GRM (SFT regularizer, α=0.01) × seeds {config['seeds']}, {config['epochs']} epochs, "
                    f"lr {config['learning_rate']}",
                ],
                [
                    "Best-of-N",
                    f"N={bon['ns'][-1]} samples (temperature 1) for each of {bon['prompts']} held-out prompts",
                ],
                ["timings (s)", ", ".join(f"{k} {v}" for k, v in summary["timings_s"].items())],
                [
                    "labelled data",
                    f"{labels['responses']} responses, {labels['pairs']} pairs before splitting",
                ],
            ],
        ),
        "<p class=note>All artefacts (responses, splits, proxies, curves, JSON) are beside this file.</p></body></html>",
    ]
    path = out / "report.html"
    atomic_write_text(path, "\n".join(parts))
    return path
