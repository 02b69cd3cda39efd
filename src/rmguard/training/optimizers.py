"""The optimizer a training config names (``optim``), over the parameters it trains."""

from __future__ import annotations

import torch

from rmguard.training.config import TrainConfig


def make_optimizer(config: TrainConfig, params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
    """The config's ``optim``: AdamW (plain or fused) with the adam_* settings, Adafactor at the given
    learning rate (no relative step), or SGD; weight_decay for all."""
    if config.optim in ("adamw_torch", "adamw_torch_fused"):
        return torch.optim.AdamW(
            params,
            lr=config.learning_rate,
            betas=(config.adam_beta1, config.adam_beta2),
            eps=config.adam_epsilon,
            weight_decay=config.weight_decay,
            fused=config.optim == "adamw_torch_fused",
        )
    if config.optim == "adafactor":
        from transformers.optimization import Adafactor

        return Adafactor(
            params, lr=config.learning_rate, scale_parameter=False, relative_step=False,
            weight_decay=config.weight_decay,
        )  # fmt: skip
    return torch.optim.SGD(params, lr=config.learning_rate, weight_decay=config.weight_decay)
