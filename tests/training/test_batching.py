"""Token-budget batches (random per epoch, replayable) and training with packing on, off and under a budget."""

from __future__ import annotations

import random

import pytest

from rmguard.data import load_pairs
from rmguard.training.batching import TokenBudgetBatchSampler
from rmguard.training.config import TrainConfig
from rmguard.training.features import tokenize_pairs
from rmguard.training.modeling import build_reward_model
from rmguard.training.packing import pair_tokens
from rmguard.training.trainer import train


def test_budget_batches_cover_each_item_once_within_budget():
    rng = random.Random(0)
    lengths = [rng.randint(1, 50) for _ in range(200)] + [120]  # one item alone over budget
    sampler = TokenBudgetBatchSampler(lengths, max_tokens=100, seed=3)
    batches = list(sampler)
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in batch) <= 100 or len(batch) == 1 for batch in batches)
    assert [200] in batches
    assert len(sampler) == len(batches)


def test_budget_batches_group_lengths_and_stay_random_per_epoch():
    rng = random.Random(1)
    lengths = [rng.randint(1, 200) for _ in range(400)]
    sampler = TokenBudgetBatchSampler(lengths, max_tokens=600, seed=0)
    epoch0 = list(sampler)
    sampler.set_epoch(1)
    epoch1 = list(sampler)
    assert epoch0 != epoch1
    replay = TokenBudgetBatchSampler(lengths, max_tokens=600, seed=0)
    replay.set_epoch(1)
    assert list(replay) == epoch1  # order from (seed, epoch) alone: a resumed run replays it
    # Grouped: the spread of lengths inside a batch is far below the spread of the data.
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in epoch0) / len(epoch0)
    assert spread < 0.25 * (max(lengths) - min(lengths))
    capped = TokenBudgetBatchSampler(lengths, max_tokens=10_000, seed=0, max_items=8)
    assert max(len(b) for b in capped) == 8


def _config(tmp_path, data, name, **overrides) -> TrainConfig:
    values = dict(
        model_name_or_path=str(data["model"]),
        train_file=str(data["train"]),
        output_dir=str(tmp_path / name),
        max_steps=3,
        per_device_train_batch_size=8,
        logging_steps=1,
        learning_rate=1e-3,
        report_to=["none"],
        disable_tqdm=True,
        max_length=64,
    )
    return TrainConfig(**{**values, **overrides})


@pytest.fixture(scope="module")
def data(tiny_llama, synthetic_data):
    return {"model": tiny_llama, "train": synthetic_data["train"]}


@pytest.mark.parametrize("objective", ["grm"])
def test_training_with_packing_follows_the_padded_run(tmp_path, data, objective):
    extra = {"grm_regularizer": "sft", "head_type": "linear"} if objective == "grm" else {}
    packed = train(_config(tmp_path, data, "packed", objective=objective, **extra))
    padded = train(_config(tmp_path, data, "padded", objective=objective, packing=False, **extra))
    assert [h["train/loss"] for h in packed.history] == pytest.approx(
        [h["train/loss"] for h in padded.history], abs=1e-5
    )


def test_token_budget_training_runs_whole_epochs_and_resumes(tmp_path, data):
    small = tmp_path / "small.jsonl"
    small.write_text("".join(data["train"].read_text().splitlines(keepends=True)[:40]))
    data = {**data, "train": small}
    _, tokenizer = build_reward_model(str(data["model"]))
    pairs, _ = load_pairs(str(small), "auto", "best_vs_worst", "train", 42)
    features, _ = tokenize_pairs(pairs, tokenizer, 64)
    # Same token counts and seed as the trainer: the planned batches of epochs 0 and 1.
    sampler = TokenBudgetBatchSampler([pair_tokens(f, True) for f in features], 200, 42, max_items=8)
    steps = sampler.num_batches(0) + sampler.num_batches(1)
    mid_epoch_1 = sampler.num_batches(0) + 1
    budget = dict(max_steps=-1, num_train_epochs=2, max_tokens_per_batch=200, seed=42)
    full = train(_config(tmp_path, data, "full", save_steps=mid_epoch_1, **budget))
    assert full.global_step == steps
    checkpoint = tmp_path / "full" / "checkpoints" / f"checkpoint-{mid_epoch_1}"
    resumed = train(_config(tmp_path, data, "resumed", resume_from_checkpoint=str(checkpoint), **budget))
    assert resumed.global_step == steps
    assert resumed.history[-1]["train/loss"] == pytest.approx(full.history[-1]["train/loss"], abs=1e-6)
