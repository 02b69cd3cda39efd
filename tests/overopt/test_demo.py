"""The demo: its prompts and gold rubric by hand, the pool's regeneration path, and ``rmguard demo --quick``.

The end-to-end test swaps SmolLM2 for the tiny random model (``--policy``) as the proxies' backbone so that
it runs in seconds; it reads the shipped pool, as the main job does. The real SmolLM2 run is the README's
main job (its measured time and headline are in docs/demo.md).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest

from rmguard.errors import ConfigError
from rmguard.overopt.study.pipeline import StudyConfig
from rmguard.overopt.study.pool import SHIPPED_POOLS, STYLES, PoolConfig, generate_world_pool, shipped_pool
from rmguard.overopt.study.prompts import build_prompts
from rmguard.overopt.study.rubric import check, gold, repeated_trigram_share

from helpers import run_cli

EXAMPLES = Path(__file__).parents[2] / "examples" / "overoptimization"


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
    assert check({"type": "finished"}, 'He said "stop."') and not check({"type": "finished"}, "It was the")
    assert repeated_trigram_share("a b c a b c") == pytest.approx(1 / 4)  # abc bca cab abc: one repeat


def test_prompts_are_distinct_and_carry_their_instructions():
    rows = build_prompts()
    assert len(rows) == 330 and len({r["prompt"] for r in rows}) == 330
    assert (
        rows[0]["prompt"]
        == 'Write a short note about the moon. Use the word "bright" and keep it under 15 words.'
    )
    assert rows[0]["constraints"] == [
        {"type": "topic", "arg": "moon"},
        {"type": "finished"},
        {"type": "include", "arg": "bright"},
        {"type": "max_words", "arg": 15},
    ]
    assert all(r["constraints"][-1]["type"] == "max_words" for r in rows)


def test_gold_by_hand():
    prompt = build_prompts()[0]["prompt"]  # topic "moon", use "bright", under 15 words
    assert gold(prompt, "The bright moon rises.") == 1.0
    assert gold(prompt, "A lamp.") == pytest.approx(2 / 4)  # finished and short, but off topic, no "bright"
    thirty = "The moon is bright " + " ".join(["tonight"] * 26)  # 30 words: half the limit credit
    repeats = 23 / 28  # of 28 trigrams, 24 are "tonight tonight tonight": all but the first repeat
    assert gold(prompt, thirty) == pytest.approx((1 + 0 + 1 + 0.5) / 4 - 0.5 * repeats)  # unfinished
    assert gold(prompt, "") == 0.0
    assert gold([{"role": "user", "content": prompt}], [{"role": "assistant", "content": "x"}]) == gold(
        prompt, "x"
    )
    with pytest.raises(ConfigError):
        gold("some other prompt", "x")


@pytest.mark.parametrize("name", sorted(SHIPPED_POOLS))
def test_shipped_pool_matches_its_config(name):
    pool = shipped_pool(name)
    config = SHIPPED_POOLS[name][1]
    assert asdict(config) == {"extends": None, **pool["config"]}  # the demo pool predates ``extends``
    assert set(pool["styles"]) == set(STYLES) and all(
        len(r) == config.prompts for r in pool["styles"].values()
    )
    assert len(pool["bon"]["prompts"]) == config.bon_prompts
    assert all(len(s) == config.bon_n for s in pool["bon"]["samples"])
    assert pool["bon"]["prompts"] == [p["id"] for p in pool["prompts"][-config.bon_prompts :]]
    assert pool["prompts"] == [
        {"id": p["id"], "prompt": p["prompt"]} for p in build_prompts()[: config.prompts]
    ]


def test_the_large_pool_extends_the_demo_pool():
    demo, large = shipped_pool("demo"), shipped_pool("large")
    kept = len(demo["prompts"])
    assert large["prompts"][:kept] == demo["prompts"]
    assert all(large["styles"][s][:kept] == demo["styles"][s] for s in STYLES)
    n = len(large["bon"]["samples"][0])
    extra = dict(zip(large["bon"]["prompts"], large["bon"]["samples"]))
    assert all(extra[i] == s[:n] for i, s in zip(demo["bon"]["prompts"], demo["bon"]["samples"]))
    # the sampled part is new: no response of a further prompt repeats one of the demo pool's
    new = {r["response"] for i, s in extra.items() if i not in demo["bon"]["prompts"] for r in s}
    assert len(new) > 0.9 * sum(len(s) for i, s in extra.items() if i not in demo["bon"]["prompts"])


def test_the_bon512_pool_extends_the_demo_pool_with_the_same_distribution():
    """Samples 0–79 of each prompt are the demo pool's (Hugging Face ``generate``), 80–511 the KV-cached
    sampler's: per prompt, their mean lengths agree (Σ z² over the 40 prompts against χ²(40))."""
    demo, pool = shipped_pool("demo"), shipped_pool("bon512")
    assert pool["prompts"] == demo["prompts"] and pool["styles"] == demo["styles"]
    assert pool["bon"]["prompts"] == demo["bon"]["prompts"]
    chi2 = 0.0
    for old, samples in zip(demo["bon"]["samples"], pool["bon"]["samples"]):
        assert samples[:80] == old
        a, b = (np.array([s["tokens"] for s in part], float) for part in (old, samples[80:]))
        chi2 += (a.mean() - b.mean()) ** 2 / (a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    assert chi2 < 73.4  # the 0.999 quantile of χ²(40)


def test_a_pool_that_extends_another_samples_only_what_it_lacks(tmp_path, tiny_llama):
    demo = shipped_pool("demo")
    config = PoolConfig(
        policy=str(tiny_llama),
        styles=["plain"],
        prompts=172,
        bon_prompts=3,
        bon_n=82,
        max_new_tokens=4,
        seed=1,
        extends="demo",
    )
    pool = generate_world_pool(config, tmp_path / "work")
    assert pool["styles"]["plain"][:170] == demo["styles"]["plain"]
    assert pool["bon"]["prompts"] == ["d169", "d170", "d171"]
    # d169: the demo pool's 80 samples first, then two drawn; d170 and d171 (not in the demo pool): 82 drawn
    assert pool["bon"]["samples"][0][:80] == demo["bon"]["samples"][-1]
    drawn = [pool["bon"]["samples"][0][80:]] + pool["bon"]["samples"][1:]
    assert [len(s) for s in drawn] == [2, 82, 82] and all(r["tokens"] <= 4 for s in drawn for r in s)
    assert len((tmp_path / "work" / "bon.jsonl").read_text().splitlines()) == 2 + 82 + 82
    assert len((tmp_path / "work" / "plain.jsonl").read_text().splitlines()) == 2  # only d170, d171 sampled
    assert generate_world_pool(config, tmp_path / "work") == pool  # resumed from the files: same pool
    fewer = generate_world_pool(replace(config, bon_n=40), tmp_path / "fewer")  # d169 keeps its first 40
    assert fewer["bon"]["samples"][0] == demo["bon"]["samples"][-1][:40]


def test_pool_regeneration_path_on_a_few_prompts(tmp_path, tiny_llama):
    config = PoolConfig(
        policy=str(tiny_llama),
        styles=["plain", "concise"],
        prompts=3,
        bon_prompts=1,
        bon_n=3,
        max_new_tokens=4,
    )
    pool = generate_world_pool(config, tmp_path / "work")
    assert [p["id"] for p in pool["prompts"]] == ["d000", "d001", "d002"] and pool["bon"]["prompts"] == [
        "d002"
    ]
    assert [len(pool["styles"][s]) for s in ("plain", "concise")] == [3, 3]
    assert len(pool["bon"]["samples"][0]) == 3 and all(s["tokens"] <= 4 for s in pool["bon"]["samples"][0])
    assert generate_world_pool(config, tmp_path / "work") == pool  # resumed from the files: same pool


def test_demo_quick_end_to_end(quick_demo, tiny_llama, tmp_path):
    out, printed = quick_demo
    assert f"report: {out / 'report.html'}" in printed
    report = json.loads((out / "report.json").read_text())
    headline = report["headline"]
    assert headline["seeds"] == 3 and headline["bon_max_n"] == 4 and headline["bon_pool_samples"] == 16
    rows = {"bt", "bsr", "grm", "odin", "inform", "bt_length_calibrated", "warm"}
    rows |= {"bt_ensemble", "bt_ensemble_wco", "bt_ensemble_uwo"}
    controls = {"gold (oracle)", "length only", "finished, then short"}
    assert set(headline["objectives"]) == rows | controls
    for name, entry in headline["objectives"].items():
        low, high = entry["in_domain_accuracy_ci"]
        assert 0.0 <= low <= entry["in_domain_accuracy"] <= high <= 1.0, name
        assert entry["gold_at_n1"] == pytest.approx(float(np.mean(report_gold(out))))
        assert entry["gold_drop_ci"][0] <= entry["gold_drop"] <= entry["gold_drop_ci"][1], name
        assert isinstance(entry["gold_drop_resolved"], bool)
    assert set(report["paired_differences"]) == {f"{r} − bt" for r in rows - {"bt"}}
    # the proxies are rmguard reward models on the whole backbone, the top layer trained
    assert headline["proxy_model"] == {
        "layers": 2,
        "trainable_layers": 1,
        "heads": {
            "bt": "linear",
            "bsr": "linear",
            "grm": "linear with bias (GRM's ValueHead)",
            "odin": "linear (+ ODIN's length head, trained only)",
            "inform": "linear (InfoRM's Linear(H, 2·128) encoder and Linear(128, 1) decoder; z = μ when scoring)",
            "bt_length_calibrated": "bt's, its rewards length-calibrated",
        },
    }
    # ‖h‖ and its paired difference for every row with a hidden state of its own; none for the calibration
    # (BT's model, so BT's ‖h‖)
    assert set(report["paired_differences"]["inform − bt"]) >= {"hidden_norm_std", "gold_drop"}
    assert "hidden_norm_std" not in report["paired_differences"]["bt_length_calibrated − bt"]
    # InfoRM's own diagnostic: the latent-outlier rate of its picks at every n, with intervals
    outliers = report["objectives"]["inform"]["latent_outliers"]
    assert outliers["ns"] == report["best_of_n"]["ns"] and len(outliers["rate"]) == len(outliers["ns"])
    for entry in [*outliers["rate"], outliers["rise"]]:
        assert entry["ci"][0] <= entry["mean"] <= entry["ci"][1]
    assert all("latent_outliers" not in o for n, o in report["objectives"].items() if n != "inform")
    # the exact log-prob per token under the LM head, before and after (the tiny backbone's head is untied:
    # only GRM's model keeps one)
    grm = headline["objectives"]["grm"]["lm_logprob"]
    assert grm["start"] < 0 and grm["end"] < 0 and "lm_logprob" not in headline["objectives"]["bt"]
    # every comparison has its p-values; the primary endpoint's carry Holm's label
    for metrics in headline["paired_differences"].values():
        for entry in metrics.values():
            assert set(entry) == {"mean", "ci", "mde", "p_value", "p_adjusted", "resolved"}
            assert entry["p_adjusted"] is None or entry["resolved"] == (entry["p_adjusted"] < 0.05)
    assert headline["answer"] and "<p class=lead>" in (out / "report.html").read_text()
    # the length-biased condition, declared in the config: every row beside the uniform condition, with its
    # own comparisons; the same seeds and splits, only the training labels differ
    uniform, length = "uniform noise 0.25", "length-biased p=0.25"
    assert list(headline["conditions"]) == [uniform, length]
    assert headline["conditions"][uniform] == headline["objectives"]
    assert set(headline["conditions"][length]) == rows | controls
    assert set(headline["condition_differences"][length]) == {f"{r} − bt" for r in rows - {"bt"}}
    shares = {n: c["wrong_label_share"] for n, c in headline["label_conditions"].items()}
    assert shares[uniform] == pytest.approx(0.25, abs=0.01) and 0 < shares[length] < 0.25
    biased = report["worlds"][length]
    for seed, manifest in report["worlds"]["noise 0.25"].items():
        assert manifest["heldout_models"] == biased[seed]["heldout_models"]
        assert manifest["counts"]["val1_in_domain"] == biased[seed]["counts"]["val1_in_domain"]
    assert "Label conditions side by side" in (out / "report.html").read_text()
    # a rerun reuses every finished world and keeps the first run's cost beside its own
    from rmguard.overopt.study.pipeline import StudyConfig as Config
    from rmguard.overopt.study.pipeline import run_study as rerun

    resumed = tmp_path / "demo"  # a copy: the first run's folder is shared with other tests
    shutil.copytree(out, resumed)
    config = Config.quick(str(resumed))
    config.policy = str(tiny_llama)
    runs = rerun(config)["summary"]["runs"]
    assert [r["label"] for r in runs] == ["first run", "resumption 1"] and all(r["finished"] for r in runs)
    assert runs[0]["timings_s"]["proxies"] > runs[1]["timings_s"]["proxies"]
    html = (resumed / "report.html").read_text()
    assert "first run" in html and "resumption 1" in html
    assert "BSR λ=1e-3" in html and (resumed / "bon" / "gold_minus_bt_vs_kl.png").is_file()
    assert all(d["gold_at_max_n"]["mde"] >= 0 for d in report["paired_differences"].values())
    # every seed is its own world: the held-out styles or training pairs differ between seeds
    worlds = report["worlds"]["noise 0.25"]
    assert len({json.dumps([w["heldout_models"], w["counts"]["train"]]) for w in worlds.values()}) > 1
    assert set(report["sweep"]) == {"noise 0.25, 0.5 of the pairs", "noise 0.25, 1 of the pairs"}
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 4 and "Four distribution-shift scenarios" in html
    assert "InfoRM's latent outliers among the Best-of-N picks" in html


def report_gold(out: Path) -> list[float]:
    """The Best-of-N pool's gold, scored again from the run's own files."""
    pool = json.loads((out / "data" / "bon_pool.json").read_text())
    return [gold(p, r) for p, rows in zip(pool["prompts"], pool["responses"]) for r in rows]


def test_study_config_runs_the_same_steps_and_says_clearly_when_the_hub_is_out_of_reach(tmp_path):
    config = tmp_path / "study.yaml"
    config.write_text(
        "gold: rmguard.overopt.study.rubric:gold\nprompts_dataset: no-such-org/no-such-prompts\nseeds: [0]\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    result = run_cli("study", "--config", str(config), "--output-dir", str(tmp_path / "out"), env=env)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and "no-such-org/no-such-prompts" in result.stderr
    assert "loading it from the hub failed" in result.stderr
    config.write_text("objectives: [bt]\nbogus_field: 1\n")
    result = run_cli("study", "--config", str(config))
    assert result.returncode == 2 and "unknown study field(s): bogus_field" in result.stderr
    example = StudyConfig.from_yaml(EXAMPLES / "ultrafeedback.yaml", str(tmp_path / "x"))
    assert example.generate and example.trainable_layers == 8 and example.bon_n == 256
