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


def test_completion_logps_by_hand(tiny_llama):
    model, _ = load_policy(str(tiny_llama))
    prompt, completion = [1, 5, 6], [7, 8]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([prompt + completion])).logits[0]
    expected = (torch.log_softmax(logits[2], -1)[7] + torch.log_softmax(logits[3], -1)[8]).item()
    assert completion_logps(model, prompt, completion) == pytest.approx(expected, abs=1e-5)


def test_rloo_few_steps_tracks_gold(tmp_path, tiny_llama, capsys):
    from rmguard.training.modeling import build_reward_model, save_reward_model

    model, tokenizer = build_reward_model(str(tiny_llama))
    save_reward_model(model, tokenizer, tmp_path / "rm", {"objective": "bt"})
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
    assert all(math.isfinite(row["gold"]) and 1 <= row["length"] <= 6 for row in summary["tracking"])
    assert (out / "policy" / "config.json").is_file()
    for name in ("gold_vs_kl.png", "gold_vs_step.png", "proxy_vs_kl.png", "tracking.csv"):
        assert (out / name).is_file()
    assert main([*base, "--gold", "x:y", "--k", "1"]) == 2
