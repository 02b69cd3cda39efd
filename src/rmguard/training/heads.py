"""Reward heads on the final hidden state h at the reward token, as each paper's reference builds them.

* standard   ``score`` = Linear(H, 1, bias=False) of the ``*ForSequenceClassification`` (transformers')
* GRM        dropout(0.1) → Linear(H, 1) with bias, or dropout(0.1) → Linear(H, 1024) → ReLU → Linear(1024, 1)
* ODIN       a second Linear(H, 1, bias=False), the length head, beside ``score`` (the quality head)
* InfoRM     an encoder Linear(H, 2d) to (μ, log σ²) of a latent z and a decoder Linear(d, 1) of z
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from rmguard.errors import ConfigError

if TYPE_CHECKING:
    from rmguard.training.modeling import RewardModel

MLP_HIDDEN = 1024
HEAD_DROPOUT = 0.1  # the GRM reference's summary_dropout_prob, before either head


def init_linear_head(head: nn.Linear) -> None:
    """N(0, 1/(H+1)) so that ‖W_p‖ ≈ 1 at the start (Hong et al. 2025)."""
    nn.init.normal_(head.weight, mean=0.0, std=1.0 / math.sqrt(head.in_features + 1))


class LinearRewardHead(nn.Linear):
    """GRM's linear head: dropout(0.1) → Linear(H, 1) with bias, PyTorch's default initialisation.

    The reference's ``ValueHead`` with ``vhead_layer_type='linear'`` (YangRui2015/Generalizable-Reward-
    Model, reward_models/grm_utils.py): ``summary = nn.Linear(hidden_size, 1)`` after
    ``nn.Dropout(0.1)``, no init strategy (kaiming-uniform weight, uniform bias in ±1/√H). An
    ``nn.Linear`` itself, so ``weight`` is W_p and the saved keys are ``weight`` and ``bias``.
    """

    def __init__(self, hidden_size: int, dropout: float = HEAD_DROPOUT):
        super().__init__(hidden_size, 1, bias=True)
        self.dropout = nn.Dropout(dropout)

    def forward(self, hidden: Tensor) -> Tensor:
        return super().forward(self.dropout(hidden))


def make_reward_head(head_type: str, hidden_size: int) -> nn.Module:
    """GRM reward heads as the reference builds them: 'linear' = dropout → Linear(H, 1) with bias;
    'mlp' = dropout → Linear(H, 1024) → ReLU → Linear(1024, 1)."""
    if head_type == "linear":
        return LinearRewardHead(hidden_size)
    if head_type == "mlp":
        return nn.Sequential(
            nn.Dropout(HEAD_DROPOUT), nn.Linear(hidden_size, MLP_HIDDEN), nn.ReLU(), nn.Linear(MLP_HIDDEN, 1)
        )
    raise ConfigError(f"unknown head_type '{head_type}'; choose linear or mlp")


class LatentRewardHead(nn.Module):
    """InfoRM's head (miaoyuchun/InfoRM, openrlhf/models/model_inform.py, its default decoder):
    ``encoder`` = Linear(H, 2d, bias=False) giving μ (the first d outputs) and log σ² (the last d);
    ``decoder`` = Linear(d, 1, bias=False). In training z = μ + σ ⊙ ε (ε ~ N(0, I), drawn per response),
    in eval mode z = μ; the reward is decoder(z). Both are initialised N(0, ``init_std``), as the reference's
    ``post_init`` does (the model config's ``initializer_range``)."""

    def __init__(self, hidden_size: int, latent_dim: int, init_std: float = 0.02):
        super().__init__()
        self.latent_dim = latent_dim
        self.encoder = nn.Linear(hidden_size, 2 * latent_dim, bias=False)
        self.decoder = nn.Linear(latent_dim, 1, bias=False)
        for layer in (self.encoder, self.decoder):
            nn.init.normal_(layer.weight, mean=0.0, std=init_std)

    def moments(self, hidden: Tensor) -> tuple[Tensor, Tensor]:
        """(μ, log σ²) of q(z | h), each [S, d]."""
        encoded = self.encoder(hidden)
        return encoded[..., : self.latent_dim], encoded[..., self.latent_dim :]

    def forward(self, hidden: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(rewards [S], μ, log σ²)."""
        mean, logvar = self.moments(hidden)
        latent = mean + (logvar / 2).exp() * torch.randn_like(mean) if self.training else mean
        return self.decoder(latent).squeeze(-1), mean, logvar

    def scoring_weight(self) -> Tensor:
        """The [1, H] weight w_d W_μ of the reward at scoring time: decoder(μ) = w_d · (W_μ h) is linear in h,
        so a plain ``score`` = Linear(H, 1, bias=False) with this weight gives it exactly."""
        return self.decoder.weight @ self.encoder.weight[: self.latent_dim]


# ----------------------------------------------------------------------------------------------- extra heads


def add_length_head(model: RewardModel) -> None:
    """ODIN's length head: a second Linear(H, 1) without bias on the hidden state the quality head
    (``score``) reads, initialised as that head is."""
    if model.kind != "standard":
        raise ConfigError("ODIN's length head goes on a standard reward model (a linear score head)")
    head = length_head(model)
    init_linear_head(head)
    model.length_head = head


def length_head(model: RewardModel) -> nn.Linear:
    """An (uninitialised) ODIN length head shaped for ``model``."""
    hidden_size = model.config.get_text_config().hidden_size
    weight = model.transformer.get_input_embeddings().weight
    return nn.Linear(hidden_size, 1, bias=False, dtype=weight.dtype, device=weight.device)


def add_latent_head(model: RewardModel, latent_dim: int) -> None:
    """InfoRM's latent head in place of ``score`` for training (``score`` is frozen: the reward goes through
    the latent; it is written at save time as the head's scoring-time weight)."""
    if model.kind != "standard":
        raise ConfigError("InfoRM's latent head goes on a standard reward model (a linear score head)")
    model.latent_head = latent_head(model, latent_dim)
    model.head.requires_grad_(False)


def latent_head(model: RewardModel, latent_dim: int) -> LatentRewardHead:
    """A fresh InfoRM latent head shaped for ``model``, initialised N(0, its initializer_range)."""
    text = model.config.get_text_config()
    weight = model.transformer.get_input_embeddings().weight
    head = LatentRewardHead(text.hidden_size, latent_dim, getattr(text, "initializer_range", 0.02))
    return head.to(dtype=weight.dtype, device=weight.device)


# The extra heads a run description names (run.RunSpec.extra_head) → how the builder adds one.
HEAD_BUILDERS = {
    "length": lambda model, settings: add_length_head(model),
    "latent": lambda model, settings: add_latent_head(model, int(settings.inform_latent_dim)),
}
