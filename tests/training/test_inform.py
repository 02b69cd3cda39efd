"""InfoRM (Miao et al. 2024): the loss by hand, the latent head, a trained checkpoint that plain transformers
and rmguard's scorer read alike, and the latent-outlier diagnostic by hand."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification

from rmguard.cli import main
from rmguard.errors import ConfigError
from rmguard.eval.latent import latent_means, mahalanobis_squared, outlier_p_values, outlier_rate
from rmguard.scoring import RewardScorer
from rmguard.training import objectives
from rmguard.training.config import load_config
from rmguard.training.heads import LatentRewardHead
from rmguard.training.loss import RewardLoss
from rmguard.training.modeling import load_reward_model
from rmguard.training.packing import make_pair_collator
from rmguard.training.tokenization import tokenize_pairs
from rmguard.training.trainer import train

from helpers import synthetic_pair


def test_inform_loss_by_hand():
    # One pair: r_c = 2, r_r = 0; latents (d = 2) μ = [1, 3], [0, 0]; log σ² = [0, 2], [−2, 0].
    # μ̄ = (2, 0), ḡ = (1, −1): KL_1 = −½(1 + 1 − 4 − e) = 1 + e/2, KL_2 = −½(1 − 1 − 0 − e⁻¹) = e⁻¹/2.
    mean = torch.tensor([[1.0, 3.0], [0.0, 0.0]], dtype=torch.float64)
    logvar = torch.tensor([[0.0, 2.0], [-2.0, 0.0]], dtype=torch.float64)
    kl = (1 + math.e / 2 + 1 / (2 * math.e)) / 2
    assert objectives.inform_kl(mean, logvar).item() == pytest.approx(kl, rel=1e-12)
    chosen, rejected = torch.tensor([2.0], dtype=torch.float64), torch.tensor([0.0], dtype=torch.float64)
    expected = math.log1p(math.exp(-2.0)) + 0.5 * kl
    assert objectives.inform(chosen, rejected, mean, logvar, 0.5).item() == pytest.approx(expected, rel=1e-12)
    # a standard-normal latent with zero mean costs nothing beyond BT
    zero = torch.zeros(2, 3, dtype=torch.float64)
    assert objectives.inform(chosen, rejected, zero, zero, 5.0).item() == pytest.approx(
        math.log1p(math.exp(-2))
    )


def test_latent_head_samples_in_training_and_reads_the_mean_at_scoring():
    torch.manual_seed(0)
    head = LatentRewardHead(hidden_size=6, latent_dim=3)
    hidden = torch.randn(4, 6)
    mean, logvar = head.moments(hidden)
    assert torch.equal(torch.cat([mean, logvar], dim=-1), head.encoder(hidden))
    head.eval()
    rewards, _, _ = head(hidden)
    assert torch.allclose(rewards, (hidden @ head.scoring_weight().T).squeeze(-1), atol=1e-6)  # exact: linear
    head.train()
    torch.manual_seed(1)
    sampled, _, _ = head(hidden)
    torch.manual_seed(1)
    noise = torch.randn_like(mean)
    assert torch.allclose(sampled, head.decoder(mean + (logvar / 2).exp() * noise).squeeze(-1))


@pytest.fixture(scope="module")
def inform_model(tiny_llama, synthetic_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("inform") / "rm"
    args = ["--model_name_or_path", str(tiny_llama), "--train_file", str(synthetic_data["train"])]
    args += ["--output_dir", str(out), "--objective", "inform", "--inform_latent_dim", "8"]
    args += ["--inform_beta", "0.5", "--max_steps", "2", "--per_device_train_batch_size", "4"]
    assert main(["train", *args, "--learning_rate", "1e-3", "--disable_tqdm"]) == 0
    return out


def test_an_inform_checkpoint_scores_the_same_in_plain_transformers(inform_model):
    meta = json.loads((inform_model / "rmguard.json").read_text())
    assert (meta["kind"], meta["latent_head"], meta["latent_dim"]) == ("standard", True, 8)
    assert (inform_model / "latent_head.safetensors").is_file()
    model, tokenizer = load_reward_model(inform_model)
    assert model.latent_head is not None and model.latent_head.latent_dim == 8
    # score = w_d W_μ, the latent head's reward at z = μ
    assert torch.allclose(model.transformer.score.weight, model.latent_head.scoring_weight(), atol=1e-7)
    rng = random.Random(3)
    rows = [synthetic_pair(rng) for _ in range(4)]
    prompts, responses = [r["prompt"] for r in rows], [r["chosen"] for r in rows]
    scores = RewardScorer(inform_model, device="cpu").score(prompts, responses)
    plain = AutoModelForSequenceClassification.from_pretrained(inform_model).eval()
    for prompt, response, score in zip(prompts, responses, scores):
        ids = tokenizer.apply_chat_template(prompt + response, return_tensors="pt", return_dict=True)
        with torch.no_grad():
            assert plain(**ids).logits[0, 0].item() == pytest.approx(score, abs=1e-5)


def test_the_training_loss_is_bt_plus_beta_kl_on_the_latent(inform_model, synthetic_data):
    from rmguard.data import load_pairs

    config = load_config(None, {"train_file": "p", "objective": "inform", "inform_beta": 0.5})
    model, tokenizer = load_reward_model(inform_model)  # eval mode: z = μ, so the loss is deterministic
    pairs, _ = load_pairs(str(synthetic_data["eval"]), "auto", config.pair_strategy, "train", 0)
    features, _ = tokenize_pairs(pairs[:5], tokenizer, 256, "drop")
    batch = make_pair_collator(False, tokenizer.pad_token_id)(features)
    with torch.no_grad():
        output = model(**batch)
        loss, _ = RewardLoss(config)(output, batch)
        mean, logvar = model.latent_head.moments(output.hidden)
    rewards = output.rewards
    by_hand = objectives.bt(rewards[:5], rewards[5:]) + 0.5 * objectives.inform_kl(mean, logvar)
    assert loss.item() == pytest.approx(by_hand.item(), rel=1e-6)


def test_inform_refusals(inform_model, synthetic_data, tmp_path):
    with pytest.raises(ConfigError, match="use_peft is not supported"):
        load_config(None, {"train_file": "p", "objective": "inform", "use_peft": True})
    with pytest.raises(ConfigError, match="inform_latent_dim must be at least 1"):
        load_config(None, {"train_file": "p", "objective": "inform", "inform_latent_dim": 0})
    more = {"model_name_or_path": str(inform_model), "train_file": str(synthetic_data["train"])}
    more.update(output_dir=str(tmp_path / "more"), max_steps=1)
    with pytest.raises(ConfigError, match="has InfoRM's latent head, but the objective is bt"):
        train(load_config(None, more))


def test_latent_outliers_by_hand(inform_model):
    # Reference latents at the corners of a square: mean (1, 1), unbiased covariance (4/3)·I.
    reference = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0]])
    points = np.array([[3.0, 1.0], [1.0, 1.0]])
    assert mahalanobis_squared(reference, points, reg_eps=0.0) == pytest.approx([3.0, 0.0])
    # χ² with 2 degrees of freedom: P(X ≥ x) = exp(−x/2)
    assert outlier_p_values(reference, points, reg_eps=0.0) == pytest.approx([math.exp(-1.5), 1.0])
    assert outlier_rate(reference, points, alpha=0.25, reg_eps=0.0) == 0.5
    scorer = RewardScorer(inform_model, device="cpu")
    means = latent_means(scorer, ["Hi"] * 3, ["Hello.", "Hello there.", "Bye."])
    assert means.shape == (3, 8)
