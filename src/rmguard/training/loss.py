"""The training loss: a config's objective applied to one micro-batch's model output."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

from rmguard.training import objectives
from rmguard.training.config import TrainConfig
from rmguard.training.modeling import RewardOutput


class _GatherWithGrad(torch.autograd.Function):
    """All-gather whose backward hands each rank the summed gradient of its own slice: every rank's loss
    depends on every rank's rewards. Ranks may hold different numbers of rewards."""

    @staticmethod
    def forward(ctx: Any, tensor: Tensor) -> Tensor:
        world = dist.get_world_size()
        sizes = [torch.zeros(1, dtype=torch.long, device=tensor.device) for _ in range(world)]
        dist.all_gather(sizes, torch.tensor([tensor.shape[0]], device=tensor.device))
        sizes = [int(size.item()) for size in sizes]
        padded = torch.zeros(max(sizes), *tensor.shape[1:], dtype=tensor.dtype, device=tensor.device)
        padded[: tensor.shape[0]] = tensor
        parts = [torch.empty_like(padded) for _ in range(world)]
        dist.all_gather(parts, padded)
        ctx.start = sum(sizes[: dist.get_rank()])
        ctx.size = tensor.shape[0]
        return torch.cat([part[:size] for part, size in zip(parts, sizes)])

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        return grad[ctx.start : ctx.start + ctx.size]


def gather_with_grad(tensor: Tensor) -> Tensor:
    """All ranks' tensors, concatenated in rank order; gradients flow back to each rank's own part."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return tensor
    return _GatherWithGrad.apply(tensor)


class RewardLoss:
    """Maps (model output, batch) to the scalar loss and its parts, as the config says.

    With ``bsr_scope='global'`` the sum-to-zero penalty is taken over the rewards of every rank
    (gathered with gradient), so N ranks of B pairs give the loss of one process over the N·B pairs once
    data-parallel gradient averaging is applied.
    """

    def __init__(self, config: TrainConfig, gather: Callable[[Tensor], Tensor] = gather_with_grad):
        self.config = config
        self.gather = gather

    def __call__(self, output: RewardOutput, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        config = self.config
        num_pairs = len(output.rewards) // 2
        chosen, rejected = output.rewards[:num_pairs], output.rewards[num_pairs:]
        margin = batch.get("margin")
        if margin is None:
            margin = config.margin
        name = config.reward_objective
        if name == "bsr":
            batch_rewards = self.gather(output.rewards) if config.bsr_scope == "global" else None
            reward_loss = objectives.bsr(
                chosen, rejected, config.bsr_lambda, margin, batch_rewards, bsr_factor(config)
            )
        elif name == "center":
            reward_loss = objectives.center(chosen, rejected, config.center_coef, margin)
        elif name == "label_smoothing":
            reward_loss = objectives.label_smoothing(chosen, rejected, config.label_smoothing)
        elif name == "bt_norm":
            reward_loss = objectives.bt_norm(chosen, rejected)
        else:  # bt, hinge, bt_dr
            reward_loss = objectives.REWARD_OBJECTIVES[name](chosen, rejected, margin=margin)
        parts = {"reward_loss": reward_loss.item()}
        if config.regularizer == "none":
            return reward_loss, parts
        regularizer = self.regularizer(output, batch, num_pairs)
        parts["regularizer"] = regularizer.item()
        return objectives.grm_combine(reward_loss, regularizer, config.grm_alpha), parts

    def regularizer(self, output: RewardOutput, batch: dict[str, Tensor], num_pairs: int) -> Tensor:
        config = self.config
        logps = output.logps
        chosen, rejected = logps[:num_pairs], logps[num_pairs:]
        if config.regularizer == "sft":
            return objectives.grm_sft(chosen, config.grm_beta)
        if config.regularizer == "sft_plain":
            return objectives.grm_sft_plain(chosen)
        if config.regularizer == "dpo_noref":
            return objectives.grm_dpo_noref(chosen, rejected, config.grm_beta)
        return objectives.grm_dpo(
            chosen, rejected, batch["ref_chosen_logps"], batch["ref_rejected_logps"], config.grm_beta
        )


def bsr_factor(config: TrainConfig) -> int | None:
    """BSR's B: the configured per-device batch size, as the reference (a short last batch keeps it). With
    token-budget batches (no fixed size) or global scope (the gathered batch), the batch's own pair count."""
    if config.max_tokens_per_batch is None and config.bsr_scope == "device":
        return config.per_device_train_batch_size
    return None
