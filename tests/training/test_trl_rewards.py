"""TRL's GRPOTrainer and RLOOTrainer take an rmguard checkpoint path as ``reward_funcs`` and compute the
rewards ``rmguard score`` gives (conversational prompts: both render the chat template).

The trainers are built for real (tiny policy, tiny reward model; under a second each) and their own
reward computation runs on fixed completions, so no generation is involved.
"""

from __future__ import annotations

import random

import pytest
import torch

from rmguard.scoring import RewardScorer
from rmguard.training.modeling import build_reward_model, save_reward_model

from helpers import synthetic_pair


@pytest.fixture(scope="module")
def reward_checkpoint(tiny_llama, tmp_path_factory):
    torch.manual_seed(3)
    model, tokenizer = build_reward_model(str(tiny_llama))
    folder = tmp_path_factory.mktemp("trl-rewards") / "rm"
    save_reward_model(model, tokenizer, folder)
    return folder


@pytest.mark.parametrize("trainer_name", ["GRPO", "RLOO"])
def test_trl_trainers_score_an_rmguard_checkpoint_as_rmguard_score(
    trainer_name, tiny_llama, reward_checkpoint, tmp_path
):
    import trl
    from datasets import Dataset

    config_class, trainer_class = (
        getattr(trl, f"{trainer_name}Config"),
        getattr(trl, f"{trainer_name}Trainer"),
    )
    rng = random.Random(7)
    rows = [synthetic_pair(rng) for _ in range(4)]
    prompts = [r["prompt"] for r in rows for _ in range(2)]
    completions = [r[side] for r in rows for side in ("chosen", "rejected")]
    args = config_class(
        output_dir=str(tmp_path / "out"),
        per_device_train_batch_size=2,
        num_generations=2,
        max_completion_length=4,
        report_to="none",
        use_cpu=True,
        bf16=False,
    )
    trainer = trainer_class(
        model=str(tiny_llama),
        reward_funcs=str(reward_checkpoint),
        args=args,
        train_dataset=Dataset.from_list([{"prompt": r["prompt"]} for r in rows]),
    )
    rewards = trainer._calculate_rewards(
        [{"prompt": p} for p in prompts], prompts, completions, [[0]] * len(prompts)
    )[:, 0]
    expected = RewardScorer(reward_checkpoint, device="cpu").score(prompts, completions)
    torch.testing.assert_close(rewards.cpu(), torch.tensor(expected), atol=1e-5, rtol=0)
    assert len(set(expected)) == len(expected)  # distinct rewards: an order mix-up could not pass
