"""RLOO with TRL's RLOOTrainer and our RM as reward: a few steps on tiny models, with gold tracking."""

from __future__ import annotations

import json
import math

import pytest
import torch

from rmguard.cli import main
from rmguard.overopt.generation import load_policy
from rmguard.overopt.rloo import completion_logps

from helpers import save_tiny_model, write_jsonl

GOLD = "def gold(p, r):\n    t = r if isinstance(r, str) else r[-1]['content']\n    return float(sum(w.startswith('g') for w in t.split()))\n"


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_completion_logps_by_hand(tiny_llama, temperature):
    """log p_T of the tokens, p_T = softmax(logits / T): the distribution sampled at temperature T."""
    model, _ = load_policy(str(tiny_llama))
    prompt, completion = [1, 5, 6], [7, 8]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([prompt + completion])).logits[0] / temperature
    expected = (torch.log_softmax(logits[2], -1)[7] + torch.log_softmax(logits[3], -1)[8]).item()
    assert completion_logps(model, prompt, completion, temperature) == pytest.approx(expected, abs=1e-5)


def test_rloo_few_steps_tracks_gold(tmp_path, tiny_llama, capsys):
    from rmguard.training.modeling import build_reward_model, save_reward_model

    for seed, name in ((0, "rm"), (1, "rm2")):
        torch.manual_seed(seed)
        model, tokenizer = build_reward_model(str(tiny_llama))
        save_reward_model(model, tokenizer, tmp_path / name, {"objective": "bt"})
    policy = save_tiny_model(tmp_path / "policy", seed=1)
    (tmp_path / "g.py").write_text(GOLD)
    write_jsonl(tmp_path / "prompts.jsonl", [{"prompt": f"p{i} p{i + 2}"} for i in range(10)])
    out = tmp_path / "out"
    base = [
        "rloo",
        "--policy",
        str(policy),
        "--prompts",
        str(tmp_path / "prompts.jsonl"),
        "--proxy",
        str(tmp_path / "rm"),
        "--proxy",
        str(tmp_path / "rm2"),
        "--ensemble",
        "wco",
        "--output-dir",
        str(out),
    ]
    code = main(
        [
            *base,
            "--gold",
            f"{tmp_path / 'g.py'}:gold",
            "--max-steps",
            "2",
            "--eval-steps",
            "1",
            "--max-new-tokens",
            "6",
            "--learning-rate",
            "1e-3",
            "--no-progress",
        ]
    )
    assert code == 0
    assert "gold peaks at step" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert [row["step"] for row in summary["tracking"]] == [0, 1, 2]
    first = summary["tracking"][0]
    assert first["kl"] == 0.0  # the policy is still the reference
    # members standardized on these very samples: each has mean 0 there, so their minimum has mean ≤ 0
    assert first["proxy"] <= 1e-9
    assert all(math.isfinite(row["gold"]) and 1 <= row["length"] <= 6 for row in summary["tracking"])
    assert (out / "policy" / "config.json").is_file()
    for name in ("gold_vs_kl.png", "gold_vs_step.png", "proxy_vs_kl.png", "tracking.csv"):
        assert (out / name).is_file()
    assert main([*base, "--gold", "x:y", "--k", "1"]) == 2
    second = base.index(str(tmp_path / "rm2"))
    one_proxy = base[: second - 1] + base[second + 1 :]
    assert main([*one_proxy, "--gold", "x:y"]) == 2
    assert "ensemble wco needs at least two --proxy models" in capsys.readouterr().err


def test_ensemble_reward_standardizes_with_the_first_batch_then_keeps_those_statistics():
    from rmguard.overopt.rloo import EnsembleReward

    batches = {"first": ([0.0, 2.0], [10.0, 30.0]), "later": ([4.0, 1.0], [20.0, 50.0])}

    def member(index):
        return lambda prompts, responses: batches[prompts[0]][index]

    reward = EnsembleReward([member(0), member(1)], "uwo", uwo_lambda=0.5)
    # first batch: member 0 has mean 1, std 1; member 1 mean 20, std 10 → z = [-1, 1] for both
    assert reward.score(["first"], [None]) == pytest.approx([-1.0, 1.0])
    # later: z0 = [3, 0], z1 = [0, 3]; mean 1.5 each, variance 2.25 each → 1.5 − 0.5·2.25
    assert reward.score(["later"], [None]) == pytest.approx([0.375, 0.375])
