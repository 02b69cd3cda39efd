"""The papers' objectives as small pure functions over 1-D reward (or log-prob) tensors.

Every function returns a scalar loss. ``chosen`` and ``rejected`` hold the rewards r_c, r_r of the B
pairs of one batch (index i pairs ``chosen[i]`` with ``rejected[i]``); Δ_i = r_c,i − r_r,i.
Training, evaluation and tests all call these functions, so the formulas live here only.

Reward objectives (Hong et al. 2025 and the baselines they compare):
    bt, bsr, center, hinge, bt_norm, bt_dr, label_smoothing
Tied pairs (RRM's neutral pairs, Liu et al. 2024) in bt and bsr: bt_tie, BT with target ½
ODIN's disentangled quality and length heads (Chen et al. 2024): odin (with pearson)
InfoRM's variational information bottleneck (Miao et al. 2024): inform (with inform_kl)
GRM hidden-state regularizers (Yang et al. 2024), over S(y) = Σ_t log π(y_t | x, y_<t):
    grm_sft, grm_sft_plain, grm_dpo, grm_dpo_noref
and ``grm_combine`` for the GRM total (1 − α)·reward_loss + α·regularizer.

Training reaches them through one registry each, ``REWARD_OBJECTIVES`` and ``GRM_REGULARIZERS`` (name →
:class:`Objective`: the loss of a :class:`BatchTerms` under the run's settings, whether it takes a margin,
any hyperparameter of its own, and what it reads beyond the rewards); ``OBJECTIVE_PRESETS`` names
combinations (``grm``). The config, the command line, validation and the run description
(training/run.py) read their names there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rmguard import checks
from rmguard.optional import LazyModule
from rmguard.registry import Registry

if TYPE_CHECKING:
    from torch import Tensor

    MarginLike = Tensor | float | None

# imported at first use: the command line reads this module's registries before any training
torch = LazyModule("torch")
F = LazyModule("torch.nn.functional")


def _delta(chosen: Tensor, rejected: Tensor, margin: MarginLike = None) -> Tensor:
    delta = chosen - rejected
    return delta if margin is None else delta - margin


def bt(chosen: Tensor, rejected: Tensor, margin: MarginLike = None, tie: Tensor | None = None) -> Tensor:
    """Bradley–Terry: L = mean_i −log σ(r_c,i − r_r,i − m_i).

    ``margin`` (a per-pair tensor or a constant, default none) gives BT with margin. ``tie`` (a per-pair
    bool tensor) marks pairs where neither response is preferred (RRM's neutral pairs): those take
    :func:`bt_tie`'s term, without margin.
    """
    delta = _delta(chosen, rejected, margin)
    if tie is None:
        return -F.logsigmoid(delta).mean()
    return torch.where(tie, _tie_terms(chosen - rejected), -F.logsigmoid(delta)).mean()


def _tie_terms(delta: Tensor) -> Tensor:
    return -0.5 * (F.logsigmoid(delta) + F.logsigmoid(-delta))


def bt_tie(chosen: Tensor, rejected: Tensor) -> Tensor:
    """BT with target ½ for pairs that tie: L = mean_i [−½ log σ(Δ_i) − ½ log σ(−Δ_i)].

    The cross-entropy of the model's P(c ≻ r) = σ(Δ) against ½, i.e. BT's loss averaged over both orders
    of the pair: a point-wise reward model's reading of a "same" label (RRM trains a pairwise model with
    that third answer). Minimal (log 2) at Δ = 0, gradient σ(Δ) − ½, the same whichever response is
    called chosen; it is :func:`label_smoothing` at ε = ½.
    """
    return _tie_terms(chosen - rejected).mean()


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
    tie: Tensor | None = None,
) -> Tensor:
    """Batch-wise sum-to-zero regularization: L = BT + λ · B · (mean of the 2B rewards)².

    Equivalently BT + λ (Σ_i (r_c,i + r_r,i))² / (4B) when B is the batch's pair count. λ defaults to 1e-3
    (Hong et al. 2025). ``batch_rewards`` are the rewards the penalty sums over; by default this batch's 2B
    rewards (the reference's per-device scope); training passes the rewards gathered across ranks for
    global scope. ``batch_size`` fixes B to the configured batch size, as the reference does. ``tie``:
    as in :func:`bt`.
    """
    if batch_rewards is None:
        batch_rewards = torch.cat([chosen, rejected])
    return bt(chosen, rejected, margin, tie) + bsr_lambda * sum_to_zero_penalty(batch_rewards, batch_size)


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


def pearson(x: Tensor, y: Tensor) -> Tensor:
    """Pearson correlation ρ(x, y) = Σ (x − x̄)(y − ȳ) / √(Σ (x − x̄)² · Σ (y − ȳ)²) of two 1-D tensors.

    0 where either is constant (a batch whose responses share one length says nothing about length).
    """
    dx, dy = x - x.mean(), y - y.mean()
    return (dx * dy).sum() / torch.sqrt((dx**2).sum() * (dy**2).sum()).clamp_min(1e-12)


def odin(
    chosen_quality: Tensor,
    rejected_quality: Tensor,
    chosen_length_reward: Tensor,
    rejected_length_reward: Tensor,
    chosen_lengths: Tensor,
    rejected_lengths: Tensor,
    quality_weight: Tensor,
    length_weight: Tensor,
    length_coef: float = 1.0,
    quality_coef: float = 1.0,
    ortho_coef: float = 1.0,
    margin: MarginLike = None,
) -> Tensor:
    """ODIN (Chen et al. 2024): two linear heads on the shared hidden state, quality Q and length L.

        L = BT(Q_c + L_c, Q_r + L_r) + λ_L · (1 − ρ(L, ℓ)) + λ_Q · |ρ(Q, ℓ)| + λ_O · |cos(w_Q, w_L)|

    over the batch's 2B responses (chosen and rejected together), ℓ their response lengths and ρ the
    Pearson correlation (:func:`pearson`). The ranking loss is BT on the summed reward; the length head is
    pulled towards length, the quality head away from it, and the heads' weights kept orthogonal. The
    length term is the paper's −ρ plus a constant (the reference code's 1 − ρ, so it stays ≥ 0). The
    orthogonality term is the paper's |w_Q · w_L| between unit-norm weights: the reference scores with
    centred, unit-norm head weights (``normalized_proj``) and penalises their dot product; here each head
    scores with its own weights, so the same quantity is their cosine, and shrinking a head cannot lower it. λ_L = λ_Q = λ_O = 1 is the reference training script's setting
    (``correlation_with_length`` and ``rm_ortho_reg``). At scoring time only Q is kept.
    """
    total_chosen = chosen_quality + chosen_length_reward
    total_rejected = rejected_quality + rejected_length_reward
    lengths = torch.cat([chosen_lengths, rejected_lengths]).to(chosen_quality.dtype)
    length_term = 1 - pearson(torch.cat([chosen_length_reward, rejected_length_reward]), lengths)
    quality_term = pearson(torch.cat([chosen_quality, rejected_quality]), lengths).abs()
    ortho_term = F.cosine_similarity(quality_weight.reshape(1, -1), length_weight.reshape(1, -1)).abs().sum()
    return (
        bt(total_chosen, total_rejected, margin)
        + length_coef * length_term
        + quality_coef * quality_term
        + ortho_coef * ortho_term
    )


def inform_kl(latent_mean: Tensor, latent_logvar: Tensor) -> Tensor:
    """InfoRM's KL term as its reference code computes it, over the 2B responses' latents [2B, d]:

        KL = mean_i −½ (1 + ḡ_i − μ̄_i² − exp(ḡ_i)),  μ̄_i = mean_k μ_ik,  ḡ_i = mean_k log σ²_ik

    (miaoyuchun/InfoRM, openrlhf/models/model_inform.py: ``kl_divergence(mu_mean, logvar_mean)``). It is the
    KL of a one-dimensional Gaussian with the latent's dimension-averaged mean and log-variance to N(0, 1),
    averaged over responses, not the paper's KL(N(μ, diag σ²) ‖ N(0, I)) = Σ_k −½(1 + log σ²_k − μ_k² − σ²_k);
    the reference code is followed.
    """
    mean, logvar = latent_mean.mean(dim=-1), latent_logvar.mean(dim=-1)
    return (-0.5 * (1 + logvar - mean.pow(2) - logvar.exp())).mean()


def inform(
    chosen: Tensor,
    rejected: Tensor,
    latent_mean: Tensor,
    latent_logvar: Tensor,
    beta: float = 0.1,
    margin: MarginLike = None,
) -> Tensor:
    """InfoRM (Miao et al., NeurIPS 2024): a variational information bottleneck between the final hidden
    state h and the reward.

        (μ, log σ²) = W_e h  (one Linear(H, 2d) without bias),  z = μ + σ ⊙ ε,  ε ~ N(0, I)  (training),
        r = w_d · z  (Linear(d, 1) without bias),
        L = BT(r_c, r_r) + β · KL  (:func:`inform_kl`, over the 2B responses' latents)

    ``chosen`` and ``rejected`` are the rewards of the sampled z; at scoring z = μ, so r = (w_d W_μ) h is
    linear in h. β defaults to the reference's ``kl_loss_coef`` 0.1, d to its ``latent_dim`` 128.
    """
    return bt(chosen, rejected, margin) + beta * inform_kl(latent_mean, latent_logvar)


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

# What an objective may read beyond the rewards and margins (its entry's ``reads``). The run description
# (training/run.py) turns these into what the model builds and the collator puts in each batch.
CHOSEN_LOGPS = "chosen_logps"  # S(y_c): the model keeps its LM head (a GRM model)
REJECTED_LOGPS = "rejected_logps"  # S(y_r)
REFERENCE_LOGPS = "reference_logps"  # S_ref(y_c), S_ref(y_r) of the frozen starting model
LENGTH_HEAD = "length_head"  # ODIN's second head: its rewards and both heads' weights
LATENT = "latent"  # InfoRM's latent q(z|h): its mean and log-variance at each reward token


@dataclass(frozen=True)
class PairField:
    """A per-pair value the collator computes for the chosen and for the rejected response:
    ``value(pair, response_ids) -> float``, ``pair`` the tokenized pair (its prompt, both responses and any
    per-pair attribute). An objective that reads ``NAME`` (a registered field) finds it in
    ``BatchTerms.fields[NAME]`` as (chosen values, rejected values)."""

    value: Callable[[Any, Sequence[int]], float]
    help: str


# The per-pair batch fields: name → entry. A test or an extension registers one with
# PAIR_FIELDS.register(name, PairField(...)) and an objective that reads it.
PAIR_FIELDS: Registry[PairField] = Registry(
    "pair field", {"length": PairField(lambda pair, response: len(response), "response tokens ℓ")}
)


@dataclass
class BatchTerms:
    """What one batch gives the objectives: rewards r_c, r_r (and per-pair margins), and what the entry
    reads: for GRM the summed response log-probs S(y) of the model and, for the DPO regularizer, of the
    reference; for ODIN the length head's rewards and weights; for InfoRM the latent's moments; registered
    per-pair fields by name."""

    chosen: Tensor
    rejected: Tensor
    margin: MarginLike = None
    tie: Tensor | None = None  # per pair: neither response preferred (bt and bsr take these)
    # All ranks' rewards for BSR's global scope; a function, so the gather runs only where it is read.
    gathered_rewards: Callable[[], Tensor] | None = None
    batch_size: int | None = None  # BSR's fixed B (None: the batch's own pair count)
    chosen_logps: Tensor | None = None
    rejected_logps: Tensor | None = None
    ref_chosen_logps: Tensor | None = None
    ref_rejected_logps: Tensor | None = None
    # ODIN: the length head's rewards and the two heads' weights
    chosen_length_rewards: Tensor | None = None
    rejected_length_rewards: Tensor | None = None
    head_weights: tuple[Tensor, Tensor] | None = None  # (quality, length)
    # InfoRM: μ and log σ² of q(z|h) at the 2B reward tokens (chosen rows first), [2B, d] each
    latent_mean: Tensor | None = None
    latent_logvar: Tensor | None = None
    # Registered pair fields (PAIR_FIELDS) the objective reads: name → (chosen values, rejected values)
    fields: Mapping[str, tuple[Tensor, Tensor]] = field(default_factory=dict)
    # All ranks' values of a per-sequence tensor (identity in one process), gradients kept
    gather: Callable[[Tensor], Tensor] = lambda tensor: tensor


def _bsr(b: BatchTerms, s: Any) -> Tensor:
    batch_rewards = b.gathered_rewards() if s.bsr_scope == "global" and b.gathered_rewards else None
    return bsr(b.chosen, b.rejected, s.bsr_lambda, b.margin, batch_rewards, b.batch_size, b.tie)


def _odin(b: BatchTerms, s: Any) -> Tensor:
    """ODIN over the global batch, as the reference gathers rewards and lengths from every rank: N ranks of
    B pairs give the loss of one process over the N·B pairs once data-parallel gradients are averaged."""
    if b.head_weights is None or b.chosen_length_rewards is None or "length" not in b.fields:
        raise ValueError("objective odin needs a model with a length head and the responses' lengths")
    margin = b.gather(b.margin) if isinstance(b.margin, torch.Tensor) else b.margin
    chosen_lengths, rejected_lengths = b.fields["length"]
    return odin(
        *(b.gather(t) for t in (b.chosen, b.rejected, b.chosen_length_rewards, b.rejected_length_rewards)),
        b.gather(chosen_lengths),
        b.gather(rejected_lengths),
        *b.head_weights,
        length_coef=s.odin_length_coef,
        quality_coef=s.odin_quality_coef,
        ortho_coef=s.odin_ortho_coef,
        margin=margin,
    )


def _inform(b: BatchTerms, s: Any) -> Tensor:
    if b.latent_mean is None or b.latent_logvar is None:
        raise ValueError("objective inform needs a model with InfoRM's latent head")
    return inform(b.chosen, b.rejected, b.latent_mean, b.latent_logvar, s.inform_beta, b.margin)


# ``s`` is the run's settings by name: TrainConfig's fields and each entry's own hyperparameters
# (run.RunSpec.settings).
Loss = Callable[[BatchTerms, Any], "Tensor"]


@dataclass(frozen=True)
class Hyperparameter:
    """A setting an objective brings with it: ``--NAME`` on the command line, ``NAME:`` in YAML, read in
    the objective's loss as ``s.NAME``. ``check(name, value)`` (from :mod:`rmguard.checks`) guards it;
    ``kind`` is its type (float, or int for a size)."""

    default: float
    help: str
    check: Callable[[str, float], None] = checks.finite
    kind: type = float


@dataclass(frozen=True)
class Objective:
    """One entry of :data:`REWARD_OBJECTIVES` or :data:`GRM_REGULARIZERS`.

    ``loss`` maps a batch and the run's settings to the loss (the formula is its function's docstring);
    ``takes_margin``: whether a margin (the pair's or ``margin``) enters it (validation refuses a margin
    otherwise); ``takes_ties``: it reads ``BatchTerms.tie`` (validation refuses an augmentation that makes
    ties otherwise); ``hyperparameters``: settings of its own beyond TrainConfig's fields; ``reads``: what
    it reads beyond the rewards and margins (the names above, or a registered :data:`PAIR_FIELDS` name),
    from which the run description decides the model, the batch and the loss's inputs. A regularizer reads
    log-probs by nature: only the chosen ones if its ``reads`` names CHOSEN_LOGPS alone.
    """

    loss: Loss
    takes_margin: bool = True
    hyperparameters: Mapping[str, Hyperparameter] = field(default_factory=dict)
    takes_ties: bool = False
    reads: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Preset:
    """An ``objective`` name that stands for a reward objective with a GRM regularizer (``grm``)."""

    objective: str
    regularizer: str
    help: str


# The reward objectives: name → entry. A new objective is a pure function above and one line here; a
# hyperparameter of its own is declared in the entry (or, if several objectives share it, a TrainConfig
# field); a test file may register one with REWARD_OBJECTIVES.register(name, Objective(...)).
REWARD_OBJECTIVES: Registry[Objective] = Registry(
    "objective",
    {
        "bt": Objective(lambda b, s: bt(b.chosen, b.rejected, b.margin, b.tie), takes_ties=True),
        "bsr": Objective(_bsr, takes_ties=True),
        "center": Objective(lambda b, s: center(b.chosen, b.rejected, s.center_coef, b.margin)),
        "hinge": Objective(lambda b, s: hinge(b.chosen, b.rejected, b.margin)),
        "bt_norm": Objective(lambda b, s: bt_norm(b.chosen, b.rejected), takes_margin=False),
        "bt_dr": Objective(lambda b, s: bt_dr(b.chosen, b.rejected, b.margin)),
        "label_smoothing": Objective(
            lambda b, s: label_smoothing(b.chosen, b.rejected, s.label_smoothing), takes_margin=False
        ),
        "odin": Objective(_odin, reads=frozenset({LENGTH_HEAD, "length"})),
        "inform": Objective(
            _inform,
            reads=frozenset({LATENT}),
            hyperparameters={
                "inform_beta": Hyperparameter(
                    0.1,
                    "InfoRM β on the KL term (the reference's kl_loss_coef).",
                    lambda n, v: checks.at_least(n, v, 0),
                ),
                "inform_latent_dim": Hyperparameter(
                    128, "InfoRM latent size d (the reference's latent_dim).", checks.at_least, int
                ),
            },
        ),
    },
)

# GRM's regularizers, the same way: name → entry whose loss is L_reg of a batch.
GRM_REGULARIZERS: Registry[Objective] = Registry(
    "grm_regularizer",
    {
        "sft": Objective(lambda b, s: grm_sft(b.chosen_logps, s.grm_beta), reads=frozenset({CHOSEN_LOGPS})),
        "sft_plain": Objective(lambda b, s: grm_sft_plain(b.chosen_logps), reads=frozenset({CHOSEN_LOGPS})),
        "dpo": Objective(
            lambda b, s: grm_dpo(
                b.chosen_logps, b.rejected_logps, b.ref_chosen_logps, b.ref_rejected_logps, s.grm_beta
            ),
            reads=frozenset({CHOSEN_LOGPS, REJECTED_LOGPS, REFERENCE_LOGPS}),
        ),
        "dpo_noref": Objective(
            lambda b, s: grm_dpo_noref(b.chosen_logps, b.rejected_logps, s.grm_beta),
            reads=frozenset({CHOSEN_LOGPS, REJECTED_LOGPS}),
        ),
    },
)

# Objective names that stand for an objective with a regularizer: ``objective: grm``.
OBJECTIVE_PRESETS: Registry[Preset] = Registry(
    "objective preset", {"grm": Preset("bt", "sft", "GRM (Yang et al. 2024): bt + the SFT regularizer")}
)


def hyperparameters() -> dict[str, Hyperparameter]:
    """Every registered objective's and regularizer's own hyperparameters, by name."""
    return {
        name: setting
        for registry in (REWARD_OBJECTIVES, GRM_REGULARIZERS)
        for entry in registry.values()
        for name, setting in entry.hyperparameters.items()
    }
