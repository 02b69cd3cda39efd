"""Best-of-N: curve math against hand computations, curve shapes on synthetic worlds, and the CLI end to end."""

from __future__ import annotations

import csv
import json
import math
import shutil
from dataclasses import replace

import numpy as np
import pytest

from rmguard.cli import main
from rmguard.errors import ConfigError
from rmguard.eval.intervals import (
    bootstrap_interval,
    seeds_and_units_interval,
    t_interval,
)
from rmguard.overopt.bon import Proxy, best_of_n_curves
from rmguard.overopt.bon_math import (
    best_of_n_expectation,
    bon_weights,
    curves_with_intervals,
    ensemble,
    gao_fit,
    kl_bon,
    log_spaced,
    pick_metrics,
    standardize,
)

from helpers import GOOD_WORDS, run_cli, save_tiny_model, write_jsonl


def test_kl_bon_by_hand():
    assert kl_bon(1) == 0.0
    assert kl_bon(2) == pytest.approx(math.log(2) - 0.5)
    assert kl_bon(64) == pytest.approx(4.158883 - 63 / 64, abs=1e-6)
    with pytest.raises(ValueError):
        kl_bon(0)


def test_log_spaced():
    assert log_spaced(1) == [1]
    ns = log_spaced(64)
    assert ns[0] == 1 and ns[-1] == 64 and ns == sorted(set(ns))
    assert {2, 4, 8, 16, 32} <= set(ns)
    assert log_spaced(10)[-1] == 10


def test_bon_weights_by_hand():
    # N = 3, n = 2: the lowest-ranked sample never wins; rank 2 wins only in {1, 2}, rank 3 in {1, 3}, {2, 3}
    assert bon_weights(3, 2).tolist() == pytest.approx([0.0, 1 / 3, 2 / 3])
    assert bon_weights(4, 1).tolist() == pytest.approx([0.25] * 4)
    assert bon_weights(4, 4).tolist() == pytest.approx([0, 0, 0, 1])
    assert bon_weights(80, 17).sum() == pytest.approx(1.0)
    with pytest.raises(ValueError):
        bon_weights(3, 4)


def test_expectation_equals_the_mean_over_every_subset():
    from itertools import combinations

    rng = np.random.default_rng(0)
    proxy, gold = rng.normal(size=(3, 7)), rng.normal(size=(3, 7))
    for n in (1, 2, 4, 7):
        brute = [
            np.mean([gold[p, max(s, key=lambda i: proxy[p, i])] for s in combinations(range(7), n)])
            for p in range(3)
        ]
        assert best_of_n_expectation(proxy, gold, [n])[:, 0] == pytest.approx(brute)
    curves = pick_metrics(proxy, gold, np.ones_like(gold), [1, 7])
    assert curves["gold"][:, 0] == pytest.approx(gold.mean(axis=1))  # n = 1: the pool's mean
    assert curves["proxy"][:, 1] == pytest.approx(proxy.max(axis=1))  # n = N: the proxy's favourite
    assert curves["gap"] == pytest.approx(curves["proxy_z"] - curves["gold_z"])


def test_gao_fit_recovers_known_alpha_and_beta():
    kl = [kl_bon(n) for n in log_spaced(80)]
    d = np.sqrt(kl)
    gold = 0.4 + d * (0.3 - 0.1 * d)  # peak at d* = 1.5, KL 2.25, gain 0.225
    fit = gao_fit(kl, gold)
    assert (fit["alpha"], fit["beta"]) == pytest.approx((0.3, 0.1))
    assert (fit["peak_kl"], fit["peak_gold"], fit["r2"]) == pytest.approx((2.25, 0.625, 1.0))
    rising = gao_fit(kl, 0.4 + 0.2 * d + 0.01 * d**2)  # never turns down
    assert rising["beta"] < 0 and math.isnan(rising["peak_kl"])
    with pytest.raises(ValueError):
        gao_fit(kl[1:], gold[1:])


def test_ensembles_on_a_common_scale():
    a = np.array([[0.0, 2.0]])  # z: [-1, 1]
    b = np.array([[110.0, 100.0]])  # z: [1, -1]; its offset must not matter
    assert standardize(a).tolist() == [[-1.0, 1.0]]
    assert ensemble([a, b], "mean").tolist() == [[0.0, 0.0]]
    assert ensemble([a, b], "wco").tolist() == [[-1.0, -1.0]]
    assert ensemble([a, b], "uwo", uwo_lambda=0.5).tolist() == [[-0.5, -0.5]]  # variance 1 each
    with pytest.raises(ValueError):
        ensemble([a], "median")


def test_mean_wco_and_uwo_pick_what_coste_et_al_formulas_say():
    """Three members, one prompt, four candidates; member 2 on another scale and offset."""
    raw = [[6.0, 5.0, 2.0, 5.0], [120.0, 100.0, 170.0, 170.0], [2.0, 3.0, 9.0, 1.0]]

    def z(row):  # standardize by hand: population standard deviation over the member's pool
        mean = sum(row) / len(row)
        std = math.sqrt(sum((x - mean) ** 2 for x in row) / len(row))
        return [(x - mean) / std for x in row]

    zs = [z(row) for row in raw]
    columns = list(zip(*zs))  # candidate j → its three standardized scores
    mean = [sum(c) / 3 for c in columns]
    wco = [min(c) for c in columns]
    uwo = [m - 0.5 * sum((x - m) ** 2 for x in c) / 3 for m, c in zip(mean, columns)]
    members = [np.array([row]) for row in raw]
    for how, expected, pick in (("mean", mean, 2), ("wco", wco, 0), ("uwo", uwo, 3)):
        values = ensemble(members, how)  # UWO at the paper's best-of-n λ = 0.5
        assert values[0].tolist() == pytest.approx(expected, rel=1e-12)
        assert int(np.argmax(values[0])) == pick == expected.index(max(expected))
    # λ = 0 is the mean: candidate 2 (members far apart) wins until disagreement costs something
    assert ensemble(members, "uwo", uwo_lambda=0.0)[0].tolist() == pytest.approx(mean, rel=1e-12)


def test_curves_draw_the_chosen_ensembles_with_their_lambda():
    proxies, gold, length = _world(exploit_weight=1.0, prompts=40, n=16)
    result = best_of_n_curves(proxies, gold, length, ensembles=("uwo",), uwo_lambda=2.0)
    assert [name for name, what in result.kinds.items() if what == "ensemble"] == ["bt ensemble-uwo"]
    selector = ensemble([p.scores for p in proxies], "uwo", uwo_lambda=2.0)
    by_hand = pick_metrics(selector, gold, length, result.ns)["gold"].mean(axis=0)
    got = [row["mean"] for row in result.curves["bt ensemble-uwo"]["gold"]]
    assert got == pytest.approx(by_hand.tolist(), rel=1e-12)


def test_intervals_by_hand():
    mean, low, high = t_interval([1.0, 2.0, 3.0])
    half = 4.302653 / math.sqrt(3)  # t_{0.975, 2} · s / √n with s = 1
    assert (mean, low, high) == pytest.approx((2.0, 2 - half, 2 + half), abs=1e-5)
    assert math.isnan(t_interval([5.0])[1]) and t_interval([5.0, float("nan")])[0] == 5.0
    mean, low, high = bootstrap_interval(np.arange(100.0))
    assert low < mean == 49.5 < high


def test_curve_intervals_stay_in_range_and_name_what_they_resample():
    seed_a = {
        m: np.array([[0.0], [1.0], [1.0]]) for m in ("gold", "proxy", "proxy_z", "gold_z", "gap", "length")
    }
    seed_b = {m: np.array([[1.0], [1.0], [1.0]]) for m in seed_a}
    row = curves_with_intervals([seed_a, seed_b])["gold"][0]
    assert row["mean"] == pytest.approx(5 / 6)
    assert 0.0 <= row["prompt_low"] < row["mean"] < row["prompt_high"] <= 1.0
    assert 0.0 <= row["both_low"] <= row["both_high"] <= 1.0
    single = curves_with_intervals([seed_a])["gold"][0]
    assert (single["both_low"], single["both_high"]) == (single["prompt_low"], single["prompt_high"])


def test_seed_and_unit_bootstrap():
    values = np.array([[1.0, 0.0, 1.0, 1.0], [1.0, 1.0, 1.0, 0.0]])  # two seeds of per-pair correctness
    mean, low, high = seeds_and_units_interval(values, "both")
    assert mean == 0.75 and 0.0 <= low < mean < high <= 1.0
    assert seeds_and_units_interval(values, "units", seed=1) == seeds_and_units_interval(
        values, "units", seed=1
    )
    assert math.isnan(seeds_and_units_interval(values[:, :1])[1])


def _world(exploit_weight: float, prompts: int = 300, n: int = 64, seed: int = 0):
    """quality helps both rewards; an exponential flaw (heavier-tailed than quality) fools the proxy and hurts the gold."""
    rng = np.random.default_rng(seed)
    quality = rng.normal(size=(prompts, n))
    exploit = rng.exponential(size=(prompts, n))
    gold = quality - exploit
    proxies = [
        Proxy(f"p{s}", "bt", quality + exploit_weight * exploit + rng.normal(scale=0.3, size=(prompts, n)))
        for s in range(2)
    ]
    return proxies, gold, np.ones((prompts, n))


def test_overoptimized_proxy_peaks_then_falls_and_the_oracle_keeps_rising():
    proxies, gold, length = _world(exploit_weight=0.5)
    result = best_of_n_curves(proxies, gold, length)
    assert set(result.curves) == {
        "p0",
        "p1",
        "bt (mean of 2 seeds)",
        "bt ensemble-mean",
        "bt ensemble-wco",
        "gold (oracle)",
    }
    assert result.kl == [kl_bon(n) for n in result.ns]
    peak = result.peaks["bt (mean of 2 seeds)"]
    assert 1 < peak["peak_n"] < 64 and peak["drop_after_peak"] > 0.1
    oracle = [row["mean"] for row in result.curves["gold (oracle)"]["gold"]]
    assert all(b >= a - 1e-9 for a, b in zip(oracle, oracle[1:]))
    gap = [row["mean"] for row in result.curves["bt (mean of 2 seeds)"]["gap"]]
    assert gap[-1] > gap[0] + 1.0
    assert result.seeds["bt (mean of 2 seeds)"] == 2 and not math.isnan(
        result.curves["bt (mean of 2 seeds)"]["gold"][-1]["both_low"]
    )


def test_faithful_proxy_keeps_rising():
    proxies, gold, length = _world(
        exploit_weight=-1.0
    )  # the proxy also penalises the flaw: no over-optimization
    result = best_of_n_curves(proxies, gold, length)
    assert result.peaks["p0"]["peak_n"] == 64


GOLD_FILE = """
def gold(prompt, response):
    text = response if isinstance(response, str) else response[-1]["content"]
    words = text.split()
    return sum(w.startswith("g") for w in words) - 0.1 * len(words)
"""


@pytest.fixture(scope="module")
def bon_setup(tmp_path_factory, tiny_llama):
    import torch

    from rmguard.training.modeling import build_reward_model, save_reward_model

    root = tmp_path_factory.mktemp("bon")
    proxies = []
    for objective in ("bt", "bsr"):
        for seed in (0, 1):
            torch.manual_seed(seed)
            model, tokenizer = build_reward_model(str(tiny_llama))
            folder = root / f"{objective}-{seed}"
            save_reward_model(model, tokenizer, folder, {"objective": objective})
            proxies.append(folder)
    (root / "gold_fn.py").write_text(GOLD_FILE)
    prompts = write_jsonl(root / "prompts.jsonl", [{"prompt": f"p{i} p{i + 1}"} for i in range(3)])
    return root, proxies, prompts


def test_generate_pool_resumes_and_extends(tmp_path, tiny_llama):
    from rmguard.overopt.generation import SamplingConfig, generate_pool, load_policy

    policy = load_policy(str(tiny_llama))
    prompts = ["p1 p2", [{"role": "user", "content": "p3"}], "p4"]
    config = SamplingConfig(max_new_tokens=5, batch_size=3, seed=7)
    fresh = generate_pool(policy, prompts, 4, config, tmp_path / "a.jsonl")
    first = generate_pool(policy, prompts, 2, config, tmp_path / "b.jsonl")
    extended = generate_pool(policy, prompts, 4, config, tmp_path / "b.jsonl")
    assert [r["response"] for r in extended] == [r["response"] for r in fresh]
    assert [(r["prompt_id"], r["sample"]) for r in fresh] == [(p, s) for p in range(3) for s in range(4)]
    assert [r["response"] for r in first] == [r["response"] for r in fresh if r["sample"] < 2]
    assert all(1 <= r["tokens"] <= 5 for r in fresh)
    # a row's draw depends on its seed only: other batches, or a count per prompt, give the same rows
    rebatched = generate_pool(policy, prompts, [1, 4, 0], replace(config, batch_size=2), tmp_path / "c.jsonl")
    assert rebatched == [r for r in fresh if r["sample"] < [1, 4, 0][r["prompt_id"]]]
    settings = tmp_path / "b.settings.json"  # a folder sampled by another sampler is not resumed
    settings.write_text(json.dumps({**json.loads(settings.read_text()), "sampler": "hf-generate"}))
    with pytest.raises(ConfigError, match="other settings"):
        generate_pool(policy, prompts, 4, config, tmp_path / "b.jsonl")


def test_bon_cli_end_to_end_and_resume(tmp_path, bon_setup):
    root, proxies, prompts = bon_setup
    policy = save_tiny_model(tmp_path / "policy", seed=3)
    out = tmp_path / "out"
    args = [
        "bon",
        "--policy",
        str(policy),
        "--prompts",
        str(prompts),
        "--gold",
        f"{root / 'gold_fn.py'}:gold",
        "--n",
        "8",
        "--max-new-tokens",
        "6",
        "--output-dir",
        str(out),
        "--no-progress",
        *[a for p in proxies for a in ("--proxy", str(p))],
    ]
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    assert "gold peaks at n=" in result.stdout
    for name in (
        "pool.jsonl",
        "scores.json",
        "curves.csv",
        "curves.json",
        "summary.json",
        "gold_vs_kl.png",
        "proxy_vs_kl.png",
        "gap_vs_kl.png",
        "length_vs_kl.png",
    ):
        assert (out / name).is_file(), name
    data = json.loads((out / "curves.json").read_text())
    assert data["ns"] == [1, 2, 3, 4, 6, 8] or data["ns"][-1] == 8
    assert {"bt (mean of 2 seeds)", "bsr ensemble-wco", "gold (oracle)", "bt-0"} <= set(data["curves"])
    scores = json.loads((out / "scores.json").read_text())
    assert all(len(v) == 24 for v in scores.values()) and len(scores) == 5
    rows = list(csv.DictReader((out / "curves.csv").open()))
    assert {r["metric"] for r in rows} == {"gold", "proxy", "proxy_z", "gold_z", "gap", "length"}
    # Resume: samples and scores are cached, so neither the policy nor the gold file is needed again.
    before = (out / "curves.csv").read_text()
    shutil.rmtree(policy)
    (root / "gold_fn.py").rename(root / "gold_moved.py")
    try:
        assert main([*args, "--resume_from_checkpoint", "latest"]) == 0
    finally:
        (root / "gold_moved.py").rename(root / "gold_fn.py")
    assert (out / "curves.csv").read_text() == before


def test_bon_from_a_pool_file_and_errors(tmp_path, bon_setup, capsys):
    root, proxies, _ = bon_setup
    words = GOOD_WORDS[:6]
    pool = write_jsonl(
        tmp_path / "pool.jsonl",
        [{"prompt": f"p{p}", "response": " ".join(words[: s + 1])} for p in range(2) for s in range(4)],
    )
    base = [
        "bon",
        "--policy",
        str(pool),
        "--gold",
        f"{root / 'gold_fn.py'}:gold",
        "--proxy",
        f"a={proxies[0]}",
        "--no-progress",
    ]
    assert main([*base, "--n", "4", "--output-dir", str(tmp_path / "o")]) == 0
    oracle = json.loads((tmp_path / "o" / "curves.json").read_text())["curves"]["gold (oracle)"]["gold"]
    assert oracle[-1]["mean"] == pytest.approx(4 - 0.4)  # all four words are good: longest wins
    capsys.readouterr()
    assert main([*base, "--n", "5", "--output-dir", str(tmp_path / "o2")]) == 2
    assert "fewer than n=5" in capsys.readouterr().err
    assert (
        main(
            [
                "bon",
                "--policy",
                str(proxies[0]),
                "--gold",
                "x:y",
                "--proxy",
                str(proxies[0]),
                "--output-dir",
                str(tmp_path / "o3"),
            ]
        )
        == 2
    )
    assert "--prompts" in capsys.readouterr().err
    assert main([*base, "--n", "4", "--ensemble", "median", "--output-dir", str(tmp_path / "o4")]) == 2
    assert "ensemble 'median' is unknown; choose from mean, wco, uwo" in capsys.readouterr().err
    assert main([*base, "--n", "4", "--uwo-lambda", "-1", "--output-dir", str(tmp_path / "o5")]) == 2
    assert "--uwo-lambda" in capsys.readouterr().err


def test_bon_and_rloo_options_come_from_the_config_fields_with_their_defaults(capsys):
    for command, shown in (
        ("bon", ["--score-batch-size", "(default: 16)", "--generation-batch-size", "(default: 1.0)"]),
        ("rloo", ["--clip-epsilon", "(default: 0.2)", "--temperature", "(default: 0.7)"]),
    ):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert all(s in text for s in shown), text
