"""Reward normalisation as OpenRLHF keeps it: the evaluation set's reward mean and std in the model config.

OpenRLHF's reward trainer (openrlhf/trainer/rm_trainer.py, ``evaluate``) pools the chosen and rejected
rewards of the whole evaluation set and writes ``config.mean = mean`` and ``config.std = std`` (unbiased,
clamped at 1e-8) into the model's ``config.json``; its reward model (openrlhf/models/model.py,
``_get_reward_model``) reads them back and, with ``normalize_reward``, returns (r − mean) / std.
rmguard writes the same two keys when it evaluates and applies them in :class:`rmguard.scoring.RewardScorer`
when asked (``--normalize``), so a checkpoint from either tool normalises the same in the other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from rmguard.errors import ConfigError

MEAN_KEY = "mean"  # openrlhf/trainer/rm_trainer.py: unwrap_model.config.mean = reward_mean.item()
STD_KEY = "std"  # ... unwrap_model.config.std = reward_std.item()
STD_FLOOR = 1e-8  # torch.std(rewards).clamp(min=1e-8)


@dataclass(frozen=True)
class RewardStatistics:
    mean: float
    std: float


def reward_statistics(chosen: Tensor, rejected: Tensor) -> RewardStatistics:
    """μ = mean(r), σ = max(std(r), 1e-8) over r = chosen ∪ rejected, std unbiased (n − 1), as OpenRLHF."""
    rewards = torch.cat([chosen.flatten(), rejected.flatten()]).double()
    return RewardStatistics(rewards.mean().item(), rewards.std().clamp(min=STD_FLOOR).item())


def record_statistics(config: Any, chosen: Tensor, rejected: Tensor) -> RewardStatistics:
    """Write the evaluation set's statistics into a transformers config (saved with the model)."""
    stats = reward_statistics(chosen, rejected)
    setattr(config, MEAN_KEY, stats.mean)
    setattr(config, STD_KEY, stats.std)
    return stats


def read_statistics(config: Any, source: str) -> RewardStatistics:
    """The statistics a checkpoint's config holds; one line naming the checkpoint when there are none."""
    mean, std = getattr(config, MEAN_KEY, None), getattr(config, STD_KEY, None)
    if mean is None or std is None:
        raise ConfigError(
            f"{source}: --normalize needs the reward mean and std in config.json ('{MEAN_KEY}', '{STD_KEY}'), "
            "written when a model is evaluated (rmguard train with an eval_file, or OpenRLHF's train_rm)"
        )
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in (mean, std)) or std <= 0:
        raise ConfigError(
            f"{source}: config.json has mean={mean!r}, std={std!r}; need finite numbers, std > 0"
        )
    return RewardStatistics(float(mean), float(std))


def normalize(rewards: Tensor, stats: RewardStatistics) -> Tensor:
    """(r − μ) / σ."""
    return (rewards - stats.mean) / stats.std
