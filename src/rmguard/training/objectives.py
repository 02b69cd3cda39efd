"""The papers' objectives as small pure functions over 1-D reward (or log-prob) tensors.

Every function returns a scalar loss. ``chosen`` and ``rejected`` hold the rewards r_c, r_r of the B
pairs of one batch (index i pairs ``chosen[i]`` with ``rejected[i]``); Δ_i = r_c,i − r_r,i.
Training, evaluation and tests all call these functions, so the formulas live here only.

Reward objectives (Hong et al. 2025 and the baselines they compare):
    bt, bsr, center, hinge, bt_norm, bt_dr, label_smoothing
GRM hidden-state regularizers (Yang et al. 2024), over S(y) = Σ_t log π(y_t | x, y_<t):
    grm_sft, grm_sft_plain, grm_dpo, grm_dpo_noref
and ``grm_combine`` for the GRM total (1 − α)·reward_loss + α·regularizer.

Training reaches them through one registry each, ``REWARD_OBJECTIVES`` and ``GRM_REGULARIZERS`` (name →
:class:`Objective`: the loss of a :class:`BatchTerms` under the run's settings, whether it takes a margin,
and any hyperparameter of its own); the config, the command line and validation read their names there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor

from rmguard import checks
from rmguard.registry import Registry

MarginLike = Tensor | float | None


def _delta(chosen: Tensor, rejected: Tensor, margin: MarginLike = None) -> Tensor:
    delta = chosen - rejected
    return delta if margin is None else delta - margin


def bt(chosen: Tensor, rejected: Tensor, margin: MarginLike = None) -> Tensor:
    """Bradley–Terry: L = mean_i −log σ(r_c,i − r_r,i − m_i).

    ``margin`` (a per-pair tensor or a constant, default none) gives BT with margin.
    """
    return -F.logsigmoid(_delta(chosen, rejected, margin)).mean()


def sum_to_zero_penalty(rewards: Tensor, batch_size: int | None = None) -> Tensor:
    """BSR's penalty over the 2B rewards of a batch: B · (mean of the 2B rewards)².

    The ×B factor is the reference implementation's (LinkedIn-XFACT/RM-Robustness multiplies λ by the
    configured per-device batch size): with ``batch_size`` it is that fixed number, so a short last batch
    keeps the same factor; without it, B is this batch's pair count and the penalty equals (Σ r)² / (4B).
    """
    factor = batch_size if batch_size is not None else rewards.numel() / 2
    return factor * rewards.mean() ** 2


def bsr(
    chosen: Tensor,
    rejected: Tensor,
    bsr_lambda: float = 1e-3,
    margin: MarginLike = None,
    batch_rewards: Tensor | None = None,
    batch_size: int | None = None,
) -> Tensor:
    """Batch-wise sum-to-zero regularization: L = BT + λ · B · (mean of the 2B rewards)².

    Equivalently BT + λ (Σ_i (r_c,i + r_r,i))² / (4B) when B is the batch's pair count. λ defaults to 1e-3
    (Hong et al. 2025). ``batch_rewards`` are the rewards the penalty sums over; by default this batch's 2B
    rewards (the reference's per-device scope); training passes the rewards gathered across ranks for
    global scope. ``batch_size`` fixes B to the configured batch size, as the reference does.
    """
    if batch_rewards is None:
        batch_rewards = torch.cat([chosen, rejected])
    return bt(chosen, rejected, margin) + bsr_lambda * sum_to_zero_penalty(batch_rewards, batch_size)


def center(chosen: Tensor, rejected: Tensor, center_coef: float = 0.01, margin: MarginLike = None) -> Tensor:
    """Reward centering (Eisenstein et al. 2023, TRL's center_rewards_coefficient):
    L = BT + c · mean_i (r_c,i + r_r,i)², c defaults to 0.01.
    """
    return bt(chosen, rejected, margin) + center_coef * ((chosen + rejected) ** 2).mean()


def hinge(chosen: Tensor, rejected: Tensor, margin: MarginLike = None) -> Tensor:
    """Hinge loss in place of BT: L = mean_i relu(m_i − (r_c,i − r_r,i)), m defaults to 0."""
    return F.relu(-_delta(chosen, rejected, margin)).mean()


def bt_norm(chosen: Tensor, rejected: Tensor, eps: float = 1e-8) -> Tensor:
    """BT on the normalised difference: L = mean_i −log σ((r_c,i − r_r,i) / √(r_c,i² + r_r,i²)).

    ``eps`` floors the denominator so that a pair of zero rewards gives Δ/√eps = 0, not NaN.
    """
    norm = torch.sqrt((chosen**2 + rejected**2).clamp_min(eps))
    return bt(chosen / norm, rejected / norm)


def bt_dr(chosen: Tensor, rejected: Tensor, margin: MarginLike = None) -> Tensor:
    """BT with direct reward terms (Eurus): L = BT + mean_i [−log σ(r_c,i) − log σ(−r_r,i)]."""
    direct = -F.logsigmoid(chosen) - F.logsigmoid(-rejected)
    return bt(chosen, rejected, margin) + direct.mean()


def label_smoothing(chosen: Tensor, rejected: Tensor, label_smoothing: float = 0.1) -> Tensor:
    """Label-smoothed BT: L = mean_i [−(1 − ε) log σ(Δ_i) − ε log σ(−Δ_i)], ε defaults to 0.1."""
    delta = chosen - rejected
    eps = label_smoothing
    return (-(1 - eps) * F.logsigmoid(delta) - eps * F.logsigmoid(-delta)).mean()


def grm_sft(chosen_logps: Tensor, beta: float = 0.1) -> Tensor:
    """GRM's SFT regularizer (its best): L_reg = −mean_i log σ(β · S(y_c,i)), β defaults to 0.1."""
    return -F.logsigmoid(beta * chosen_logps).mean()


def grm_sft_plain(chosen_logps: Tensor) -> Tensor:
    """GRM's plain SFT regularizer: L_reg = −mean_i S(y_c,i)."""
    return -chosen_logps.mean()


def grm_dpo(
    chosen_logps: Tensor,
    rejected_logps: Tensor,
    ref_chosen_logps: Tensor,
    ref_rejected_logps: Tensor,
    beta: float = 0.1,
) -> Tensor:
    """GRM's DPO regularizer, reference = the frozen starting model:
    L_reg = −mean_i log σ(β [(S_θ(y_c) − S_θ(y_r)) − (S_ref(y_c) − S_ref(y_r))]).
    """
    logits = (chosen_logps - rejected_logps) - (ref_chosen_logps - ref_rejected_logps)
    return -F.logsigmoid(beta * logits).mean()


def grm_dpo_noref(chosen_logps: Tensor, rejected_logps: Tensor, beta: float = 0.1) -> Tensor:
    """GRM's DPO regularizer without reference: L_reg = −mean_i log σ(β (S_θ(y_c) − S_θ(y_r)))."""
    return -F.logsigmoid(beta * (chosen_logps - rejected_logps)).mean()


def grm_combine(reward_loss: Tensor, regularizer: Tensor, alpha: float = 0.01) -> Tensor:
    """GRM total: L = (1 − α) · reward_loss + α · L_reg, α defaults to 0.01."""
    return (1 - alpha) * reward_loss + alpha * regularizer


# ----------------------------------------------------------------------------------------------- dispatch


class Settings(Protocol):
    """The hyperparameters the tables read (``TrainConfig`` has them all, and an entry's own
    :class:`Hyperparameter` by its name)."""

    bsr_lambda: float
    bsr_scope: str
    center_coef: float
    label_smoothing: float
    grm_beta: float


@dataclass
class BatchTerms:
    """What one batch gives the objectives: rewards r_c, r_r (and per-pair margins), and for GRM the
    summed response log-probs S(y) of the model and, for the DPO regularizer, of the reference."""

    chosen: Tensor
    rejected: Tensor
    margin: MarginLike = None
    # All ranks' rewards for BSR's global scope; a function, so the gather runs only where it is read.
    gathered_rewards: Callable[[], Tensor] | None = None
    batch_size: int | None = None  # BSR's fixed B (None: the batch's own pair count)
    chosen_logps: Tensor | None = None
    rejected_logps: Tensor | None = None
    ref_chosen_logps: Tensor | None = None
    ref_rejected_logps: Tensor | None = None


def _bsr(b: BatchTerms, s: Settings) -> Tensor:
    batch_rewards = b.gathered_rewards() if s.bsr_scope == "global" and b.gathered_rewards else None
    return bsr(b.chosen, b.rejected, s.bsr_lambda, b.margin, batch_rewards, b.batch_size)


Loss = Callable[[BatchTerms, Settings], Tensor]


@dataclass(frozen=True)
class Hyperparameter:
    """A setting an objective brings with it: ``--NAME`` on the command line, ``NAME:`` in YAML, read in
    the objective's loss as ``s.NAME``. ``check(name, value)`` (from :mod:`rmguard.checks`) guards it."""

    default: float
    help: str
    check: Callable[[str, float], None] = checks.finite


@dataclass(frozen=True)
class Objective:
    """One entry of :data:`REWARD_OBJECTIVES` or :data:`GRM_REGULARIZERS`.

    ``loss`` maps a batch and the run's settings to the loss (the formula is its function's docstring);
    ``takes_margin``: whether a margin (the
    pair's or ``margin``) enters it (validation refuses a margin otherwise); ``hyperparameters``: settings
    of its own beyond TrainConfig's fields; ``chosen_only``: a regularizer that reads S(y_c) only, so the
    rejected log-probs are never computed.
    """

    loss: Loss
    takes_margin: bool = True
    hyperparameters: Mapping[str, Hyperparameter] = field(default_factory=dict)
    chosen_only: bool = False


# The reward objectives: name → entry. A new objective is a pure function above and one line here; a
# hyperparameter of its own is declared in the entry (or, if several objectives share it, a TrainConfig
# field); a test file may register one with REWARD_OBJECTIVES.register(name, Objective(...)).
REWARD_OBJECTIVES: Registry[Objective] = Registry(
    "objective",
    {
        "bt": Objective(lambda b, s: bt(b.chosen, b.rejected, b.margin)),
        "bsr": Objective(_bsr),
        "center": Objective(lambda b, s: center(b.chosen, b.rejected, s.center_coef, b.margin)),
        "hinge": Objective(lambda b, s: hinge(b.chosen, b.rejected, b.margin)),
        "bt_norm": Objective(lambda b, s: bt_norm(b.chosen, b.rejected), takes_margin=False),
        "bt_dr": Objective(lambda b, s: bt_dr(b.chosen, b.rejected, b.margin)),
        "label_smoothing": Objective(
            lambda b, s: label_smoothing(b.chosen, b.rejected, s.label_smoothing), takes_margin=False
        ),
    },
)

# GRM's regularizers, the same way: name → entry whose loss is L_reg of a batch.
GRM_REGULARIZERS: Registry[Objective] = Registry(
    "grm_regularizer",
    {
        "sft": Objective(lambda b, s: grm_sft(b.chosen_logps, s.grm_beta), chosen_only=True),
        "sft_plain": Objective(lambda b, s: grm_sft_plain(b.chosen_logps), chosen_only=True),
        "dpo": Objective(
            lambda b, s: grm_dpo(
                b.chosen_logps, b.rejected_logps, b.ref_chosen_logps, b.ref_rejected_logps, s.grm_beta
            )
        ),
        "dpo_noref": Objective(lambda b, s: grm_dpo_noref(b.chosen_logps, b.rejected_logps, s.grm_beta)),
    },
)


def hyperparameters() -> dict[str, Hyperparameter]:
    """Every registered objective's and regularizer's own hyperparameters, by name."""
    return {
        name: setting
        for registry in (REWARD_OBJECTIVES, GRM_REGULARIZERS)
        for entry in registry.values()
        for name, setting in entry.hyperparameters.items()
    }
