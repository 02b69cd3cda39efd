"""InfoRM's reward-hacking indicator (Miao et al. 2024): responses whose latent lies far from the latents of
reference responses (the SFT policy's) are outliers, and hacked responses are outliers.

Pure functions over latent vectors (μ of InfoRM's q(z | h): ``RewardModel.latent_head.moments``), as
miaoyuchun/InfoRM's openrlhf/eval/compute_mop.py computes them (``compute_hacking_pvalues``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from scipy.stats import chi2

from rmguard.data.records import Text
from rmguard.errors import ConfigError

if TYPE_CHECKING:
    from rmguard.scoring import RewardScorer


def mahalanobis_squared(reference: np.ndarray, points: np.ndarray, reg_eps: float = 1e-3) -> np.ndarray:
    """d²(x) = (x − m)ᵀ (S + εI)⁻¹ (x − m) of each row x of ``points`` [M, D], with m the mean and S the
    (unbiased, ``np.cov``) covariance of the rows of ``reference`` [N, D]; ε = ``reg_eps`` (the reference's
    1e-3) keeps S invertible when N ≤ D."""
    reference, points = np.asarray(reference, dtype=float), np.asarray(points, dtype=float)
    if reference.ndim != 2 or points.ndim != 2 or reference.shape[1] != points.shape[1]:
        raise ValueError(f"latents of one size expected, got {reference.shape} and {points.shape}")
    if len(reference) < 2:
        raise ValueError("the covariance needs at least two reference latents")
    covariance = np.atleast_2d(np.cov(reference, rowvar=False)) + reg_eps * np.eye(reference.shape[1])
    delta = points - reference.mean(axis=0)
    return np.einsum("md,md->m", np.linalg.solve(covariance, delta.T).T, delta)


def outlier_p_values(reference: np.ndarray, points: np.ndarray, reg_eps: float = 1e-3) -> np.ndarray:
    """p = 1 − F_χ²(D)(d²(x)) for each row of ``points``: the chance that a latent drawn from the reference's
    Gaussian lies at least as far out (InfoRM's Mahalanobis outlier probability, per response)."""
    squared = mahalanobis_squared(reference, points, reg_eps)
    return chi2.sf(squared, df=np.asarray(reference).shape[1])


def outlier_rate(
    reference: np.ndarray, points: np.ndarray, alpha: float = 0.05, reg_eps: float = 1e-3
) -> float:
    """The fraction of ``points`` whose outlier p-value is below ``alpha`` (e.g. of Best-of-N picks)."""
    return float((outlier_p_values(reference, points, reg_eps) < alpha).mean())


def latent_means(scorer: RewardScorer, prompts: Sequence[Text], responses: Sequence[Text]) -> np.ndarray:
    """μ of InfoRM's q(z | h) for each response [N, d], from a checkpoint trained with objective inform."""
    _latent_head(scorer.model)  # refused before the scoring pass
    return hidden_latents(scorer.model, scorer.score_with_hidden(prompts, responses)[1])


def hidden_latents(model: Any, hidden: torch.Tensor) -> np.ndarray:
    """μ of InfoRM's q(z | h) [N, d] for final hidden states ``hidden`` [N, H] at the reward tokens (the
    scorer's ``score_with_hidden``) of an InfoRM model."""
    head = _latent_head(model)
    weight = head.encoder.weight
    with torch.no_grad():
        mean, _ = head.moments(hidden.to(weight.device, weight.dtype))
    return mean.float().cpu().numpy()


def _latent_head(model: Any) -> Any:
    if model.latent_head is None:
        raise ConfigError("latent outliers need an InfoRM reward model (objective inform: a latent head)")
    return model.latent_head
