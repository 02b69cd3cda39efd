"""Write the committed study runs' numbers into docs/demo.md and README.md from their report.json files.

    python scripts/study_docs.py

Three runs are written: the demo (``docs/results/demo/``, parts ``demo-*``), the power study
(``docs/results/cpu_power/``, parts ``power-*``) and the RLOO arm (``docs/results/rl_cpu/``, parts ``rl-*``). Every generated part sits between
``<!-- generated:NAME -->`` and ``<!-- /generated:NAME -->``; the rest of each file is left as it is. A run
with no committed report says so, and no number is written. ``tests/overopt/test_study_docs.py`` holds the
files equal to what this script writes.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from rmguard.fileio import atomic_write_text  # noqa: E402
from rmguard.overopt.study.headline import comparison_rows, label  # noqa: E402
from rmguard.overopt.study.report import cost, num, with_ci  # noqa: E402

DOCS = (REPO / "docs" / "demo.md", REPO / "README.md")


@dataclass(frozen=True)
class Run:
    """A committed run: the prefix of its generated parts, the folder of its report, and whether it is a
    ``rmguard study`` run or a ``rmguard study-rl`` one."""

    prefix: str
    folder: str
    rl: bool = False

    @property
    def report(self) -> Path:
        return REPO / self.folder / "report.json"

    def no_run(self) -> str:
        return f"No run is committed yet: `{self.folder}/report.json` is absent, so no number is stated here."


RUNS = (
    Run("demo", "docs/results/demo"),
    Run("power", "docs/results/cpu_power"),
    Run("rl", "docs/results/rl_cpu", rl=True),
)


def _table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def rows_table(objectives: dict[str, dict[str, Any]], n: int) -> str:
    """Each row at the primary endpoint: in-domain accuracy, shifted τ, gold at n = 1 and the largest n,
    the drop with its adjusted label and power, the log-prob per token before and after."""
    rows = []
    for name, o in objectives.items():
        logp = o.get("lm_logprob") or {}
        power = (o.get("gold_drop_power") or {}).get("power")
        rows.append(
            [
                label(name),
                num(o["in_domain_accuracy"]),
                num(o["shifted_tau_mean"]),
                num(o["gold_at_n1"]),
                num(o["gold_at_max_n"]),
                f"{o['gold_drop']:+.3f} {'resolved' if o['gold_drop_resolved'] else 'not resolved'}",
                "–" if power is None else f"{power:.0%}",
                f"{num(logp.get('start'))} → {num(logp.get('end'))}" if logp else "–",
            ]
        )
    headers = ["row", "in-domain acc.", "shifted τ", "gold n=1", f"gold n={n}", "drop", "power at 0.02"]
    return _table([*headers, "log p/token"], rows)


def _comparisons(view: dict[str, Any]) -> str:
    headers = ["row or comparison", "metric", "value [95% CI]", "p", "adjusted p", "label"]
    return _table(headers, comparison_rows(view))


def tables(h: dict[str, Any]) -> str:
    """The rows table and every comparison; with several label conditions, one pair of tables for each
    (the main condition first, each other one its own Holm family)."""
    n = h["bon_max_n"]
    conditions = h.get("conditions") or {}
    if len(conditions) < 2:
        return f"{rows_table(h['objectives'], n)}\n\n{_comparisons(h)}"
    out = []
    for name, objectives in conditions.items():
        meta = h["label_conditions"][name]
        differences = h["paired_differences"] if meta["main"] else h["condition_differences"][name]
        view = {"objectives": objectives, "paired_differences": differences}
        share = meta["wrong_label_share"]
        out.append(f"**{name}** ({share:.1%} of the training labels against the gold)")
        out += [rows_table(objectives, n), _comparisons(view)]
    return "\n\n".join(out)


def _interval(entry: dict[str, Any]) -> str:
    return with_ci(entry["mean"], entry["ci"])


def rl_table(h: dict[str, Any]) -> str:
    """Each RLOO arm's proxy: gold before and after, its peak, the cross-fitted drop with its adjusted label,
    the KL and length reached and the proxy's own gain."""
    rows = []
    for name, row in h["proxies"].items():
        drop = row["gold_drop"]
        verdict = "resolved" if drop["resolved"] else "not resolved"
        rows.append(
            [
                label(name),
                _interval(row["gold_start"]),
                _interval(row["gold_end"]),
                str(row["gold_peak_step"]),
                f"{drop['mean']:+.3f} [{drop['ci'][0]:+.3f}, {drop['ci'][1]:+.3f}] {verdict}",
                f"{drop['p_adjusted']:.2g}",
                _interval(row["kl_end"]),
                f"{row['length_end']['mean']:.1f}",
                f"{row['proxy_gain']:+.3f}",
            ]
        )
    headers = ["proxy", "gold at step 0", "gold at the end", "peak step", "drop", "adjusted p"]
    return _table([*headers, "KL at the end (nats)", "length (tokens)", "proxy gain"], rows)


def rl_cost(report: dict[str, Any]) -> str:
    """What the RLOO run cost: its world and proxies, then each arm, in the seconds of its own run."""
    proxies = ", ".join(
        f"{label(n)} {'(not timed)' if s is None else f'{s:.0f} s'}"
        for n, s in report["proxies_seconds"].items()
    )
    arms = ", ".join(f"{n} {s:.0f} s" for n, s in report["arms_seconds"].items())
    return f"Measured on this machine: proxies {proxies}; RLOO arms {arms}"


def parts(report: dict[str, Any] | None, run: Run = RUNS[0]) -> dict[str, str]:
    """The generated parts of the docs for one run, by name."""
    names = (f"{run.prefix}-answer", f"{run.prefix}-tables", f"readme-{run.prefix}")
    if report is None:
        return dict.fromkeys(names, run.no_run())
    h = report["headline"]
    answer = " ".join(h["answer"])
    spent = rl_cost(report) if run.rl else cost(report)
    return dict(
        zip(
            names,
            (
                f"{answer}\n\n{spent}.",
                rl_table(h) if run.rl else tables(h),
                f"{answer} ({spent}; every number in `{run.folder}/report.json`.)",
            ),
            strict=True,
        )
    )


def all_parts() -> dict[str, str]:
    """Every run's parts, from the committed reports."""
    out: dict[str, str] = {}
    for run in RUNS:
        out |= parts(json.loads(run.report.read_text()) if run.report.is_file() else None, run)
    return out


def render(text: str, generated: dict[str, str]) -> str:
    """``text`` with each generated part replaced (a part the text lacks is left out)."""
    for name, body in generated.items():
        pattern = re.compile(rf"(<!-- generated:{name} -->\n).*?(\n<!-- /generated:{name} -->)", re.S)
        text = pattern.sub(lambda m, body=body: m.group(1) + body + m.group(2), text)
    return text


def main() -> None:
    generated = all_parts()
    for doc in DOCS:
        text = doc.read_text()
        new = render(text, generated)
        if new != text:
            atomic_write_text(doc, new)


if __name__ == "__main__":
    main()
