"""The study's proxies' measurements against plain transformers, and the study configs."""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from rmguard.data.formats import chat_pair
from rmguard.data.records import ScoredResponse
from rmguard.errors import ConfigError
from rmguard.overopt.study.pipeline import StudyConfig, run_study
from rmguard.overopt.study.proxies import frozen_pass, lm_head_weight, lm_logprobs, untrained_model
from rmguard.training import frozen_prefix
from rmguard.training.modeling import build_reward_model
from rmguard.training.tokenization import tokenize_responses

from helpers import save_tiny_model, synthetic_pair

EXAMPLES = Path(__file__).parents[2] / "examples" / "overoptimization"


@pytest.fixture(scope="module")
def texts():
    rng = random.Random(3)
    rows = [synthetic_pair(rng) for _ in range(12)]
    chats = [chat_pair(r["prompt"], r[k]) for r in rows for k in ("chosen", "rejected")]
    return [p for p, _ in chats], [r for _, r in chats]


@pytest.mark.parametrize("tied", [True, False])
def test_lm_logprobs_are_the_language_models_exact_log_probs(tmp_path, texts, tied):
    """The study's log-prob per token: the whole vocabulary's log-softmax through the model's own LM head,
    equal to plain transformers' causal LM on the same tokens (a standard model reads the tied embeddings)."""
    from transformers import AutoModelForCausalLM

    path = save_tiny_model(tmp_path, num_hidden_layers=3, tie_word_embeddings=tied)
    prompts, responses = texts
    frozen_prefix.forget()
    model, tokenizer = untrained_model(str(path), trainable_layers=1)
    sums, counts = lm_logprobs(model, tokenizer, prompts, responses, batch_size=5)
    reference = AutoModelForCausalLM.from_pretrained(path).eval()
    items = [ScoredResponse(p, r) for p, r in zip(prompts, responses)]
    for k, feature in enumerate(tokenize_responses(items, tokenizer)):
        ids = torch.tensor([feature.prompt_ids + feature.response_ids])
        with torch.no_grad():
            logps = torch.log_softmax(reference(ids).logits[0].double(), -1)
        first = len(feature.prompt_ids)
        want = sum(logps[t - 1, ids[0, t]].item() for t in range(first, ids.shape[1]))
        assert counts[k] == len(feature.response_ids)
        assert sums[k] == pytest.approx(want, abs=1e-4)
    standard, tokenizer = build_reward_model(str(path), "standard", "linear")
    if tied:
        assert torch.equal(lm_head_weight(standard), reference.get_output_embeddings().weight)
    else:
        with pytest.raises(ConfigError, match="no LM head"):
            lm_head_weight(standard)


def _report(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


def test_cpu_power_config_at_quick_size(tmp_path, tiny_llama):
    """examples/overoptimization/cpu_power.yaml's design (Best-of-N to n = 256 on the 512-sample pool, the
    uniform and the length-biased label conditions, controls, WARM and the ensembles) at a --quick size:
    every row, under both conditions, has its drop, interval, power and adjusted label."""
    config = StudyConfig.from_yaml(EXAMPLES / "cpu_power.yaml", str(tmp_path / "power"))
    assert (config.pool, config.bon_n, config.bon_max_n) == ("bon512", 512, 256)
    assert config.label_noise == config.length_bias == 0.25
    quick = StudyConfig.quick(str(tmp_path / "power"))
    config.policy, config.seeds, config.prompts, config.bon_prompts = str(tiny_llama), [0, 1], 36, 6
    config.bon_n, config.bon_max_n = quick.bon_n, quick.bon_max_n
    run_study(config)
    headline = _report(tmp_path / "power")["headline"]
    assert list(headline["conditions"]) == ["uniform noise 0.25", "length-biased p=0.25"]
    for table in headline["conditions"].values():
        for name in [*config.objectives, "gold (oracle)", "length only", "finished, then short"]:
            entry = table[name]
            assert entry["gold_drop_ci"][0] <= entry["gold_drop"] <= entry["gold_drop_ci"][1], name
            assert isinstance(entry["gold_drop_resolved"], bool)
            power = entry["gold_drop_power"]
            assert 0 <= power["power_holm_strictest"] <= power["power"] <= 1


def test_demo_help_says_25_percent_once():
    from rmguard.cli import build_parser

    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    text = action.choices["demo"].format_help()
    assert "25% of training labels" in text and "%%" not in text


def test_the_frozen_pass_reports_responses_done_of_the_total(tmp_path, texts):
    """The first stage's progress counts responses (not 0/1 for its whole length), ending at the total."""
    path = save_tiny_model(tmp_path / "model", num_hidden_layers=3, tie_word_embeddings=True)
    prompts, responses = texts
    table = SimpleNamespace(prompts=prompts, responses=responses, token_rows=list(range(0, len(prompts), 2)))
    calls = []
    arrays = frozen_pass(
        str(path), 1, table, tmp_path / "frozen", batch_size=2, progress=lambda *a: calls.append(a)
    )
    assert calls[-1] == (len(prompts), len(prompts)) and len(calls) > 1
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)
    assert np.isfinite(arrays["norms"]).all() and np.isnan(arrays["logp_sum"][1::2]).all()
    assert (tmp_path / "frozen" / "frozen-outputs.pt").is_file()


def test_bt_members_redraw_their_labels_under_their_worlds_condition():
    """A BT member's pairs: the world's gold order restored, then the world's condition drawn again under
    the member's seed: with a length bias of 1 every pair that differs in length has its longer response
    chosen; with uniform noise 0.5 exactly half of the pairs disagree with the gold."""
    from rmguard.eval.labeling import corrupt_labels
    from rmguard.overopt.study.worlds import _member_rows

    def pair(chosen: str, rejected: str) -> dict:
        return {
            "chosen": [{"role": "assistant", "content": chosen}],
            "rejected": [{"role": "assistant", "content": rejected}],
            "chosen_model": "a",
            "rejected_model": "b",
            "chosen_gold": 1.0,
            "rejected_gold": 0.0,
            "label_flipped": False,
        }

    texts = [("short", "much longer"), ("a longer one", "brief"), ("x", "yy"), ("same", "size")]
    world = [pair(a, b) for a, b in texts]
    corrupt_labels(world, 0.25, 0.0, seed=1)  # the world's own draw, undone by the member
    member = _member_rows(world, 0.0, 1.0, seed=5)
    assert len(member) == 4 and all(r["chosen_gold"] == 0.0 for r in member if r["label_flipped"])
    for row in member:
        chosen, rejected = (len(row[k][0]["content"]) for k in ("chosen", "rejected"))
        assert chosen >= rejected
    assert sum(r["label_flipped"] for r in member) == 2  # the two pairs whose gold prefers the shorter
    uniform = _member_rows(world, 0.5, 0.0, seed=5)
    assert sum(r["chosen_gold"] < r["rejected_gold"] for r in uniform) == 2
