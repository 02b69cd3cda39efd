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
from rmguard.training.run import RunSpec, describe


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
    """Maps (model output, batch) to the scalar loss and its parts, as the run's description says.

    With ``bsr_scope='global'`` the sum-to-zero penalty is taken over the rewards of every rank
    (gathered with gradient), so N ranks of B pairs give the loss of one process over the N·B pairs once
    data-parallel gradient averaging is applied.
    """

    def __init__(
        self,
        config: TrainConfig,
        gather: Callable[[Tensor], Tensor] = gather_with_grad,
        spec: RunSpec | None = None,
    ):
        self.config = config
        self.run = spec or describe(config)
        self.gather = gather

    def __call__(self, output: RewardOutput, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
        run = self.run
        terms = self.terms(output, batch)
        reward_loss = run.reward_objective.loss(terms, run.settings)
        parts = {
            "reward_loss": reward_loss.item(),
            "accuracy": (terms.chosen > terms.rejected).float().mean().item(),
        }
        if run.regularizer_objective is None:
            return reward_loss, parts
        regularizer = run.regularizer_objective.loss(terms, run.settings)
        parts["regularizer"] = regularizer.item()
        return objectives.grm_combine(reward_loss, regularizer, self.config.grm_alpha), parts

    def terms(self, output: RewardOutput, batch: dict[str, Tensor]) -> objectives.BatchTerms:
        """The batch's rewards, margins and what the objective reads, split into chosen (first half) and
        rejected."""
        half = len(output.rewards) // 2
        logps, length_rewards = output.logps, output.length_rewards
        latent = output.latent or (None, None)
        return objectives.BatchTerms(
            chosen=output.rewards[:half],
            rejected=output.rewards[half:],
            margin=pair_margins(batch.get("margin"), self.config.margin),
            tie=batch.get("tie"),
            gathered_rewards=lambda: self.gather(output.rewards),
            batch_size=bsr_factor(self.config),
            chosen_logps=None if logps is None else logps[:half],
            rejected_logps=None if logps is None else logps[half:],
            ref_chosen_logps=batch.get("ref_chosen_logps"),
            ref_rejected_logps=batch.get("ref_rejected_logps"),
            chosen_length_rewards=None if length_rewards is None else length_rewards[:half],
            rejected_length_rewards=None if length_rewards is None else length_rewards[half:],
            head_weights=output.head_weights,
            latent_mean=latent[0],
            latent_logvar=latent[1],
            fields={
                name: (batch[f"chosen_{name}"], batch[f"rejected_{name}"]) for name in self.run.batch.fields
            },
            gather=self.gather,
        )


def pair_margins(column: Tensor | None, configured: float | None) -> objectives.MarginLike:
    """The margin of each pair: its own from the data's ``margin`` column, else the configured constant,
    else none (0). The collators mark a pair without a margin as NaN, so a partly filled column gets
    the configured margin where it is empty."""
    if column is None:
        return configured
    return torch.where(column.isnan(), 0.0 if configured is None else configured, column)


def bsr_factor(config: TrainConfig) -> int | None:
    """BSR's B: the configured per-device batch size, as the reference (a short last batch keeps it). With
    token-budget batches (no fixed size) or global scope (the gathered batch), the batch's own pair count."""
    if config.max_tokens_per_batch is None and config.bsr_scope == "device":
        return config.per_device_train_batch_size
    return None


def pair_metrics(chosen: Tensor, rejected: Tensor, hidden_norms: Tensor | None = None) -> dict[str, float]:
    """What training reports of a held-out set's rewards, as tensors (``rmguard eval``'s metrics, over plain
    numbers, are :mod:`rmguard.eval.metrics`): accuracy (strict r_c > r_r: ties count as wrong, and are
    counted), reward mean and std over all 2B rewards, mean margin r_c − r_r, and the mean ‖h‖ of the final
    hidden state at the reward token."""
    rewards = torch.cat([chosen, rejected]).float()
    metrics = {
        "accuracy": (chosen > rejected).float().mean().item(),
        "ties": int((chosen == rejected).sum().item()),
        "reward_mean": rewards.mean().item(),
        "reward_std": rewards.std(unbiased=False).item(),
        "margin_mean": (chosen - rejected).float().mean().item(),
        "pairs": int(chosen.numel()),
    }
    if hidden_norms is not None:
        metrics["hidden_norm_mean"] = hidden_norms.float().mean().item()
    return metrics
