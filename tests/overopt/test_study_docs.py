"""The study runs' numbers in docs/demo.md and README.md are the committed runs' report.json files, written
by scripts/study_docs.py (and, with no committed run, say so and state no number)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _script():
    spec = importlib.util.spec_from_file_location("study_docs", REPO / "scripts" / "study_docs.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up
    spec.loader.exec_module(module)
    return module


def test_the_docs_hold_what_the_committed_report_says():
    script = _script()
    generated = script.all_parts()
    for doc in ("docs/demo.md", "README.md"):
        text = (REPO / doc).read_text()
        assert script.render(text, generated) == text, f"{doc}: run python scripts/study_docs.py"
    demo = (REPO / "docs" / "demo.md").read_text()
    readme = (REPO / "README.md").read_text()
    for run in script.RUNS:
        assert (
            f"<!-- generated:{run.prefix}-tables -->" in demo
            and f"<!-- generated:{run.prefix}-answer -->" in demo
        )
        assert f"<!-- generated:readme-{run.prefix} -->" in readme


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


def test_two_label_conditions_get_a_pair_of_tables_each():
    script = _script()
    row = {
        "in_domain_accuracy": 0.7,
        "shifted_tau_mean": 0.1,
        "gold_at_n1": 0.5,
        "gold_at_max_n": 0.55,
        "gold_drop": 0.03,
        "gold_drop_ci": [0.01, 0.05],
        "gold_drop_p_value": 0.001,
        "gold_drop_p_adjusted": 0.004,
        "gold_drop_resolved": True,
        "control": False,
    }
    entry = {"mean": -0.02, "ci": [-0.04, 0.0], "p_value": 0.04, "p_adjusted": 0.08, "resolved": False}
    other = {**row, "gold_drop": 0.001, "gold_drop_resolved": False}
    h = {
        "bon_max_n": 256,
        "answer": ["BT's gold falls."],
        "objectives": {"bt": row},
        "paired_differences": {"bsr − bt": {"gold_at_max_n": entry}},
        "conditions": {"uniform noise 0.25": {"bt": row}, "length bias 0.25": {"bt": other}},
        "label_conditions": {
            "uniform noise 0.25": {"wrong_label_share": 0.25, "main": True},
            "length bias 0.25": {"wrong_label_share": 0.125, "main": False},
        },
        "condition_differences": {
            "length bias 0.25": {"bsr − bt": {"gold_at_max_n": {**entry, "mean": 0.01}}}
        },
    }
    run = script.RUNS[1]
    parts = script.parts({"headline": h, "timings_s": {"total": 60.0}}, run)
    tables = parts["power-tables"]
    uniform, biased = tables.split("**length bias 0.25** (12.5% of the training labels against the gold)")
    assert uniform.startswith("**uniform noise 0.25** (25.0% of the training labels against the gold)")
    assert "| BT | 0.700 | 0.100 | 0.500 | 0.550 | +0.030 resolved | – | – |" in uniform
    assert (
        "| BSR λ=1e-3 − BT | gold_at_max_n | -0.020 [-0.040, 0.000] | 0.04 | 0.08 | not resolved |" in uniform
    )
    assert "| BT | 0.700 | 0.100 | 0.500 | 0.550 | +0.001 not resolved | – | – |" in biased
    assert (
        "| BSR λ=1e-3 − BT | gold_at_max_n | 0.010 [-0.040, 0.000] | 0.04 | 0.08 | not resolved |" in biased
    )
    assert "`docs/results/cpu_power/report.json`" in parts["readme-power"]
    assert script.parts(None, run)["power-answer"].startswith("No run is committed yet")


def test_an_rl_report_becomes_a_table_and_its_cost():
    script = _script()
    interval = {"mean": 0.5, "ci": [0.4, 0.6]}
    drop = {"mean": 0.02, "ci": [-0.01, 0.05], "p_adjusted": 0.6, "resolved": False}
    row = {
        "gold_start": interval,
        "gold_end": {"mean": 0.6, "ci": [0.5, 0.7]},
        "gold_peak_step": 25,
        "gold_drop": drop,
        "kl_end": {"mean": 1.25, "ci": [1.0, 1.5]},
        "length_end": {"mean": 20.04, "ci": [18.0, 22.0]},
        "proxy_gain": 0.8,
    }
    report = {
        "headline": {"answer": ["BT: gold rises."], "proxies": {"bt": row, "grm": row}},
        "proxies_seconds": {"bt": 149.1, "grm": None},
        "arms_seconds": {"bt-seed0": 1800.4, "grm-seed0": 1700.0},
    }
    run = next(r for r in script.RUNS if r.rl)
    parts = script.parts(report, run)
    assert parts["rl-answer"] == (
        "BT: gold rises.\n\nMeasured on this machine: proxies BT 149 s, GRM (SFT reg.) (not timed); "
        "RLOO arms bt-seed0 1800 s, grm-seed0 1700 s."
    )
    assert (
        "| GRM (SFT reg.) | 0.500 [0.400, 0.600] | 0.600 [0.500, 0.700] | 25 | +0.020 [-0.010, +0.050] not resolved"
        " | 0.6 | 1.250 [1.000, 1.500] | 20.0 | +0.800 |" in parts["rl-tables"]
    )
    assert parts["readme-rl"].endswith("every number in `docs/results/rl_cpu/report.json`.)")
