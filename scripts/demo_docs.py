"""Write the demo's numbers into docs/demo.md and README.md from a run's report.json.

    python scripts/demo_docs.py [docs/results/demo/report.json]

Every generated part sits between ``<!-- generated:NAME -->`` and ``<!-- /generated:NAME -->``; the rest of
each file is left as it is. With no committed report the parts say so, and no number is written.
``tests/overopt/test_demo_docs.py`` holds the files equal to what this script writes.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from rmguard.fileio import atomic_write_text  # noqa: E402
from rmguard.overopt.study.headline import comparison_rows, label  # noqa: E402
from rmguard.overopt.study.report import cost  # noqa: E402

REPORT = REPO / "docs" / "results" / "demo" / "report.json"
NO_RUN = (
    "No run of this design (full-depth proxies, Holm-adjusted labels) is committed yet: "
    "`docs/results/demo/report.json` is absent, so no number is stated here."
)


def _table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def _num(value: Any) -> str:
    return "–" if value is None else f"{value:.3f}"


def rows_table(headline: dict[str, Any]) -> str:
    """Each row at the primary endpoint: in-domain accuracy, shifted τ, gold at n = 1 and the largest n,
    the drop with its adjusted label and power, the log-prob per token before and after."""
    rows = []
    for name, o in headline["objectives"].items():
        logp = o.get("lm_logprob") or {}
        power = (o.get("gold_drop_power") or {}).get("power")
        rows.append(
            [
                label(name),
                _num(o["in_domain_accuracy"]),
                _num(o["shifted_tau_mean"]),
                _num(o["gold_at_n1"]),
                _num(o["gold_at_max_n"]),
                f"{o['gold_drop']:+.3f} {'resolved' if o['gold_drop_resolved'] else 'not resolved'}",
                "–" if power is None else f"{power:.0%}",
                f"{_num(logp.get('start'))} → {_num(logp.get('end'))}" if logp else "–",
            ]
        )
    n = headline["bon_max_n"]
    headers = [
        "row",
        "in-domain acc.",
        "shifted τ",
        "gold n=1",
        f"gold n={n}",
        "drop",
        "power at 0.02",
        "log p/token",
    ]
    return _table(headers, rows)


def parts(report: dict[str, Any] | None) -> dict[str, str]:
    """The generated parts of the docs, by name."""
    if report is None:
        return {"demo-answer": NO_RUN, "demo-tables": NO_RUN, "readme-demo": NO_RUN}
    h = report["headline"]
    answer = " ".join(h["answer"])
    comparisons = _table(
        ["row or comparison", "metric", "value [95% CI]", "p", "adjusted p", "label"], comparison_rows(h)
    )
    return {
        "demo-answer": f"{answer}\n\n{cost(report)}.",
        "demo-tables": f"{rows_table(h)}\n\n{comparisons}",
        "readme-demo": f"{answer} ({cost(report)}; every number in `docs/results/demo/report.json`.)",
    }


def render(text: str, generated: dict[str, str]) -> str:
    """``text`` with each generated part replaced (a part the text lacks is left out)."""
    for name, body in generated.items():
        pattern = re.compile(rf"(<!-- generated:{name} -->\n).*?(\n<!-- /generated:{name} -->)", re.S)
        text = pattern.sub(lambda m, body=body: m.group(1) + body + m.group(2), text)
    return text


def main(path: str | None = None) -> None:
    report_file = Path(path) if path else REPORT
    report = json.loads(report_file.read_text()) if report_file.is_file() else None
    generated = parts(report)
    for doc in (REPO / "docs" / "demo.md", REPO / "README.md"):
        text = doc.read_text()
        new = render(text, generated)
        if new != text:
            atomic_write_text(doc, new)


if __name__ == "__main__":
    main(*sys.argv[1:2])
