"""The demo's numbers in docs/demo.md and README.md are the committed run's report.json, written by
scripts/demo_docs.py (and, with no committed run, say so and state no number)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _script():
    spec = importlib.util.spec_from_file_location("demo_docs", REPO / "scripts" / "demo_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_docs_hold_what_the_committed_report_says():
    script = _script()
    report = json.loads(script.REPORT.read_text()) if script.REPORT.is_file() else None
    generated = script.parts(report)
    for doc in ("docs/demo.md", "README.md"):
        text = (REPO / doc).read_text()
        assert script.render(text, generated) == text, f"{doc}: run python scripts/demo_docs.py"
    demo = (REPO / "docs" / "demo.md").read_text()
    assert "<!-- generated:demo-tables -->" in demo and "<!-- generated:demo-answer -->" in demo
    assert "<!-- generated:readme-demo -->" in (REPO / "README.md").read_text()


def test_a_report_becomes_tables_and_sentences():
    script = _script()
    entry = {
        "mean": 0.01,
        "ci": [-0.01, 0.03],
        "mde": 0.02,
        "p_value": 0.3,
        "p_adjusted": 0.9,
        "resolved": False,
    }
    row = {
        "in_domain_accuracy": 0.8,
        "shifted_tau_mean": 0.2,
        "gold_at_n1": 0.5,
        "gold_at_max_n": 0.6,
        "gold_drop": -0.004,
        "gold_drop_ci": [-0.01, 0.002],
        "gold_drop_p_value": 0.2,
        "gold_drop_p_adjusted": 1.0,
        "gold_drop_resolved": False,
        "gold_drop_power": {"alternative": 0.02, "power": 0.4},
        "lm_logprob": {"start": -2.5, "end": -2.75},
        "control": False,
    }
    report = {
        "headline": {
            "bon_max_n": 10,
            "answer": ["No proxy's gold falls.", "Nothing else."],
            "objectives": {"bt": row, "bsr": row},
            "paired_differences": {"bsr − bt": {"gold_at_max_n": entry}},
        },
        "runs": [{"label": "first run", "timings_s": {"total": 600.0}}],
        "timings_s": {"total": 600.0},
    }
    parts = script.parts(report)
    assert parts["demo-answer"].startswith("No proxy's gold falls. Nothing else.")
    assert "first run 600 s wall" in parts["demo-answer"]
    tables = parts["demo-tables"]
    assert (
        "| BSR λ=1e-3 | 0.800 | 0.200 | 0.500 | 0.600 | -0.004 not resolved | 40% | -2.500 → -2.750 |"
        in tables
    )
    assert "| BSR λ=1e-3 − BT | gold_at_max_n | 0.010 [-0.010, 0.030] | 0.3 | 0.9 | not resolved |" in tables
    text = "a\n<!-- generated:demo-tables -->\nold\n<!-- /generated:demo-tables -->\nb"
    assert (
        script.render(text, parts)
        == f"a\n<!-- generated:demo-tables -->\n{tables}\n<!-- /generated:demo-tables -->\nb"
    )
