"""Tied pairs (RRM's neutral pairs): BT with target ½ by hand, through the collator and the loss, and
``pair_augmentation: rrm`` end to end through the command line."""

from __future__ import annotations

import json
import math
import random

import pytest
import torch

from rmguard.errors import ConfigError
from rmguard.training import objectives
from rmguard.training.collate import pair_targets
from rmguard.training.config import load_config
from rmguard.training.loss import RewardLoss
from rmguard.training.modeling import RewardOutput
from rmguard.training.tokenization import PairFeatures

from helpers import run_cli, synthetic_pair, write_jsonl


def log_sigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x))


def test_bt_tie_by_hand():
    # Δ = 1: −½ (log σ(1) + log σ(−1)) = ½ (0.3132617 + 1.3132617)
    assert objectives.bt_tie(torch.tensor([1.0]), torch.tensor([0.0])).item() == pytest.approx(
        0.8132617, abs=1e-6
    )
    assert objectives.bt_tie(torch.tensor([0.3]), torch.tensor([0.3])).item() == pytest.approx(math.log(2))
    a, b = torch.tensor([0.7, -2.0]), torch.tensor([-0.4, 1.5])
    assert objectives.bt_tie(a, b).item() == pytest.approx(objectives.bt_tie(b, a).item())
    assert objectives.bt_tie(a, b).item() == pytest.approx(objectives.label_smoothing(a, b, 0.5).item())
    delta = torch.tensor([1.0], requires_grad=True)
    objectives.bt_tie(delta, torch.tensor([0.0])).backward()
    assert delta.grad.item() == pytest.approx(1 / (1 + math.exp(-1)) - 0.5)  # σ(Δ) − ½


def test_bt_and_bsr_take_ties_without_margin():
    chosen, rejected = torch.tensor([2.0, 1.0]), torch.tensor([0.0, 0.0])
    tie = torch.tensor([False, True])
    # mean of −log σ(2 − 0.5) and the tie's 0.8132617 (the margin 0.5 does not enter a tie)
    expected = (-log_sigmoid(1.5) + 0.8132617) / 2
    assert objectives.bt(chosen, rejected, 0.5, tie).item() == pytest.approx(expected, abs=1e-6)
    penalty = 0.1 * 2 * (3.0 / 4) ** 2  # λ · B · (mean of the 2B rewards)²
    bsr = objectives.bsr(chosen, rejected, 0.1, 0.5, batch_size=2, tie=tie)
    assert bsr.item() == pytest.approx(expected + penalty, abs=1e-6)
    assert objectives.bt(chosen, rejected, tie=torch.tensor([False, False])) == objectives.bt(
        chosen, rejected
    )


def test_the_tie_column_reaches_the_loss(tiny_llama, synthetic_data, tmp_path):
    features = [PairFeatures([1], [2], [3]), PairFeatures([1], [4], [5], tie=True)]
    batch = pair_targets(features)
    assert batch["tie"].tolist() == [False, True]
    assert "tie" not in pair_targets(features[:1])
    config = load_config(None, {"train_file": str(synthetic_data["train"]), "output_dir": str(tmp_path)})
    rewards = torch.tensor([2.0, 1.0, 0.0, 0.0])  # chosen rewards, then rejected
    loss, _ = RewardLoss(config)(RewardOutput(rewards, torch.zeros(4, 1)), batch)
    assert loss.item() == pytest.approx((-log_sigmoid(2.0) + 0.8132617) / 2, abs=1e-6)


def test_an_objective_without_ties_refuses_rrm(synthetic_data, tmp_path):
    with pytest.raises(ConfigError) as error:
        load_config(
            None,
            {"train_file": str(synthetic_data["train"]), "objective": "hinge", "pair_augmentation": "rrm"},
        )
    assert str(error.value) == (
        "pair_augmentation 'rrm' makes tie pairs, which objective 'hinge' does not take; use bt, bsr"
    )


def test_a_grm_regularizer_refuses_rrm(synthetic_data):
    with pytest.raises(ConfigError, match="a GRM regularizer would train the language-model head on"):
        load_config(
            None, {"train_file": str(synthetic_data["train"]), "objective": "grm", "pair_augmentation": "rrm"}
        )


def test_cli_trains_with_rrm_and_reports_what_it_made(tiny_llama, tmp_path):
    rng = random.Random(1)
    data = write_jsonl(tmp_path / "train.jsonl", [synthetic_pair(rng) for _ in range(12)])
    run = run_cli(
        "train",
        "--model_name_or_path", str(tiny_llama),
        "--train_file", str(data),
        "--output_dir", str(tmp_path / "rm"),
        "--pair_augmentation", "rrm",
        "--per_device_train_batch_size", "16",
        "--num_train_epochs", "1",
        "--learning_rate", "1e-3",
        "--report_to", "csv",
        "--logging_steps", "1",
        "--disable_tqdm", "true",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    output = run.stdout + run.stderr
    assert f"{data}: pair_augmentation rrm: 12 original, 96 non-contextual, 72 neutral (tie)" in output
    assert f"{data}: 180 pairs tokenized" in output
    rows = (tmp_path / "rm" / "logs" / "metrics.csv").read_text().splitlines()
    losses = [float(row.split(",")[2]) for row in rows if ",train/loss," in row]
    assert len(losses) == math.ceil(180 / 16) and all(math.isfinite(loss) for loss in losses)
    assert json.loads((tmp_path / "rm" / "train_config.json").read_text())["pair_augmentation"] == "rrm"
