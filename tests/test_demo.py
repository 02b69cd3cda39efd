"""The demo: the gold rubric by hand, and ``rmguard demo --quick`` end to end.

The end-to-end test swaps SmolLM2 for the tiny random model (``--policy``) so that it runs in seconds
here; the real SmolLM2 run is the README's main job (its measured time is in the report).
"""

from __future__ import annotations

import json

import pytest

from rmguard.cli import main
from rmguard.errors import ConfigError
from rmguard.overopt.demo.world import check, demo_prompts, gold, repeated_trigram_share


def test_rubric_checks_by_hand():
    assert check({"type": "include", "arg": "bright"}, "A Bright moon.")
    assert not check({"type": "exclude", "arg": "simple"}, "it is simple")
    assert check({"type": "max_words", "arg": 3}, "one two three") == 1.0
    assert check({"type": "max_words", "arg": 2}, "one two three four") == 0.5
    assert check({"type": "bullets", "arg": 2}, "- a\n- b") and not check(
        {"type": "bullets", "arg": 2}, "- a"
    )
    assert check({"type": "starts_with", "arg": "Yes"}, "yes, indeed") and check(
        {"type": "number"}, "seven seas"
    )
    assert check({"type": "ends_with_question"}, "Why? ") and check({"type": "lowercase"}, "all small 3")
    assert repeated_trigram_share("a b c a b c") == pytest.approx(
        1 / 4
    )  # trigrams abc bca cab abc: one repeat


def test_gold_by_hand():
    row = demo_prompts()[0]  # include "bright", at most 25 words
    assert row["constraints"] == [{"type": "include", "arg": "bright"}, {"type": "max_words", "arg": 25}]
    prompt = [{"role": "user", "content": row["prompt"]}]
    assert gold(prompt, [{"role": "assistant", "content": "The moon is bright."}]) == 1.0
    assert gold(row["prompt"], "The moon.") == 0.5
    assert gold(row["prompt"], "") == 0.0
    assert gold(row["prompt"], "bright bright bright bright bright") == pytest.approx(1.0 - 0.5 * 2 / 3)
    with pytest.raises(ConfigError):
        gold("some other prompt", "x")
    assert len(demo_prompts()) == 80 and len({r["prompt"] for r in demo_prompts()}) == 80


def test_demo_quick_end_to_end(tmp_path, tiny_llama, capsys):
    out = tmp_path / "demo"
    assert (
        main(["demo", "--quick", "--policy", str(tiny_llama), "--output-dir", str(out), "--no-progress"]) == 0
    )
    printed = capsys.readouterr().out
    assert f"report: {out / 'report.html'}" in printed
    report = json.loads((out / "report.json").read_text())
    assert set(report["proxies"]) == {f"{o}-seed{s}" for o in ("bt", "bsr", "grm") for s in (0, 1)}
    assert {"bt (mean of 2 seeds)", "grm ensemble-min", "gold (oracle)"} <= set(report["best_of_n"]["curves"])
    assert set(report["evaluation"]["results"]["bt-seed0"]) == {
        "val1_in_domain",
        "val2_prompt_disjoint",
        "val3_response_disjoint",
        "val4_mutual_disjoint",
    }
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 4 and "Four robustness scenarios" in html
    assert "first 1 of 30 layers" in html and report["timings_s"]["total"] > 0
