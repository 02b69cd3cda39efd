"""The study's cached-feature proxies against rmguard's own reward-model path, and the study configs."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from rmguard.data.formats import chat_pair
from rmguard.overopt.demo.cached import CachedProxy, FitSettings, TokenTable, fit_cached_proxy, score_cached
from rmguard.overopt.demo.features import backbone_features
from rmguard.overopt.demo.pipeline import StudyConfig, run_study
from rmguard.scoring import RewardScorer
from rmguard.training.collate import pad_sequences
from rmguard.training.features import tokenize_responses
from rmguard.training.modeling import build_reward_model, save_reward_model

from helpers import synthetic_pair

EXAMPLES = Path(__file__).parents[2] / "examples" / "overoptimization"


@pytest.fixture(scope="module")
def texts():
    rng = random.Random(3)
    rows = [synthetic_pair(rng) for _ in range(12)]
    chats = [chat_pair(r["prompt"], r[k]) for r in rows for k in ("chosen", "rejected")]
    return [p for p, _ in chats], [r for _, r in chats]


@pytest.fixture(scope="module")
def cached(tiny_llama, texts, tmp_path_factory):
    prompts, responses = texts
    cache = tmp_path_factory.mktemp("features") / "features.npz"
    return backbone_features(
        str(tiny_llama), None, prompts, responses, list(range(0, len(prompts), 2)), cache, 8
    )


def test_cached_proxy_at_its_start_is_rmguards_reward_model_on_the_frozen_backbone(
    tiny_llama, texts, cached, tmp_path
):
    """Identity adapter + a head w: the same rewards as rmguard's scorer on a checkpoint with head w."""
    torch.manual_seed(1)
    model, tokenizer = build_reward_model(str(tiny_llama))
    save_reward_model(model, tokenizer, tmp_path / "rm")
    full = RewardScorer(tmp_path / "rm", batch_size=5).score(*texts)
    proxy = CachedProxy(cached["reward_states"].shape[1], rank=4)
    proxy.head.weight.data.copy_(model.head.weight.data)
    rewards, norms = score_cached(proxy, torch.from_numpy(cached["reward_states"]))
    assert np.allclose(rewards, full, atol=1e-5)
    assert np.allclose(norms, np.linalg.norm(cached["reward_states"], axis=1))  # ‖h‖ = ‖f‖ at the start


def test_cached_grm_log_probs_at_the_start_equal_the_full_models(tiny_llama, texts, cached):
    """GRM's S(y) through the top-K support with the frozen tail is exact where h = f."""
    model, tokenizer = build_reward_model(str(tiny_llama), kind="grm")
    rows = cached["token_rows"]
    prompts, responses = [texts[0][i] for i in rows], [texts[1][i] for i in rows]
    from rmguard.data.records import ScoredResponse

    items = [ScoredResponse(p, r, "<memory>", k + 1) for k, (p, r) in enumerate(zip(prompts, responses))]
    features = tokenize_responses(items, tokenizer)
    batch = pad_sequences(
        [f.prompt_ids + f.response_ids for f in features],
        [len(f.prompt_ids) for f in features],
        tokenizer.pad_token_id,
        with_logps=True,
    )
    with torch.no_grad():
        full = model.eval()(**batch).logps.numpy()
    table = TokenTable(cached)
    proxy = CachedProxy(cached["reward_states"].shape[1], rank=4)
    with torch.no_grad():
        approx = table.sequence_logps(proxy, rows).numpy()
    assert np.allclose(approx, full, atol=1e-4) and np.allclose(
        cached["token_logp"].sum(), full.sum(), atol=1e-3
    )


def test_cached_fit_learns_a_separable_preference_and_moves_the_norms():
    rng = np.random.default_rng(0)
    features = torch.from_numpy(rng.normal(0, 1, (200, 16)).astype(np.float32))
    direction = rng.normal(0, 1, 16)
    score = features.numpy() @ direction
    pairs = np.array(
        [[a, b] if score[a] > score[b] else [b, a] for a, b in rng.integers(0, 200, (300, 2)) if a != b]
    )
    settings = FitSettings(epochs=5, learning_rate=1e-2, batch_size=16, rank=8)
    proxy = fit_cached_proxy(features, pairs, {"objective": "bt"}, settings, init_seed=0, order_seed=0)
    rewards, norms = score_cached(proxy, features)
    assert np.mean(rewards[pairs[:, 0]] > rewards[pairs[:, 1]]) > 0.9
    assert not np.allclose(norms, features.norm(dim=1).numpy())  # the adapter moved h
    again = fit_cached_proxy(features, pairs, {"objective": "bt"}, settings, init_seed=0, order_seed=0)
    assert np.array_equal(score_cached(again, features)[0], rewards)  # seeded: the same proxy


def _report(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


def test_cpu_power_config_at_quick_size(tmp_path, tiny_llama):
    """examples/overoptimization/cpu_power.yaml's design (noise levels, sweep of every objective, controls,
    WARM and the ensembles) at a --quick size: every row has its drop, interval, MDE and resolved label."""
    config = StudyConfig.from_yaml(EXAMPLES / "cpu_power.yaml", str(tmp_path / "power"))
    assert len(config.seeds) >= 30 and len(config.label_noises or []) >= 1 and len(config.data_fractions) >= 4
    quick = StudyConfig.quick(str(tmp_path / "power"))
    config.policy, config.seeds, config.prompts, config.bon_prompts = str(tiny_llama), [0, 1, 2], 36, 6
    config.bon_n, config.bon_max_n, config.data_fractions = quick.bon_n, quick.bon_max_n, [0.5, 1.0]
    config.pool_file = None
    run_study(config)
    report = _report(tmp_path / "power")
    objectives = report["headline"]["objectives"]
    for name in [*config.objectives, "gold (oracle)", "length only", "finished, then short"]:
        entry = objectives[name]
        assert entry["gold_drop_ci"][0] <= entry["gold_drop"] <= entry["gold_drop_ci"][1], name
        assert isinstance(entry["gold_drop_resolved"], bool) and entry["gold_drop_mde"] >= 0
    assert len(report["sweep"]) == 4  # two noise levels × two data fractions
    for cell in report["sweep"].values():
        names = {o if cell["fraction"] == 1 else f"{o}@{cell['fraction']:g}" for o in config.sweep_objectives}
        assert set(cell["objectives"]) == names
        assert all(set(o["gao_fit"]) >= {"alpha", "beta", "turns"} for o in cell["objectives"].values())
