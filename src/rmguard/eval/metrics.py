"""Evaluation metrics as small pure functions over plain numbers (no models, no files).

Pairwise accuracy, per-prompt rank correlation with gold scores, the RewardBench v1,
RewardBench v2 and RM-Bench aggregations, and the hidden-state statistics of the diagnostics.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from rmguard.errors import RMGuardError

# RewardBench v1 sections (Lambert et al. 2024). Section score = Σ_s acc_s·n_s / Σ_s n_s over its subsets;
# the overall score is the mean of the section scores.
REWARDBENCH_SECTIONS: dict[str, tuple[str, ...]] = {
    "Chat": ("alpacaeval-easy", "alpacaeval-length", "alpacaeval-hard", "mt-bench-easy", "mt-bench-med"),
    "Chat Hard": (
        "mt-bench-hard",
        "llmbar-natural",
        "llmbar-adver-neighbor",
        "llmbar-adver-GPTInst",
        "llmbar-adver-GPTOut",
        "llmbar-adver-manual",
    ),
    "Safety": (
        "refusals-dangerous",
        "refusals-offensive",
        "xstest-should-refuse",
        "xstest-should-respond",
        "donotanswer",
    ),
    "Reasoning": ("math-prm", "hep-cpp", "hep-go", "hep-java", "hep-js", "hep-python", "hep-rust"),
}
# Examples per subset in RewardBench v1 (rewardbench/constants.py, EXAMPLE_COUNTS); math-prm has 447 but
# counts 984, as much as the six code subsets together, so math and code weigh equally in Reasoning.
REWARDBENCH_EXAMPLE_COUNTS: dict[str, int] = {
    "alpacaeval-easy": 100, "alpacaeval-length": 95, "alpacaeval-hard": 95, "mt-bench-easy": 28,
    "mt-bench-med": 40, "mt-bench-hard": 37, "math-prm": 984, "refusals-dangerous": 100,
    "refusals-offensive": 100, "llmbar-natural": 100, "llmbar-adver-neighbor": 134, "llmbar-adver-GPTInst": 92,
    "llmbar-adver-GPTOut": 47, "llmbar-adver-manual": 46, "xstest-should-refuse": 154,
    "xstest-should-respond": 250, "donotanswer": 136, "hep-cpp": 164, "hep-go": 164, "hep-java": 164,
    "hep-js": 164, "hep-python": 164, "hep-rust": 164,
}  # fmt: skip


class MetricError(RMGuardError):
    """Inputs a metric cannot be computed from (mismatched ids, too few responses, wrong shapes)."""


# ----------------------------------------------------------------------------------------------- pairs


def pairwise_accuracy(chosen: Sequence[float], rejected: Sequence[float]) -> tuple[float, int]:
    """(accuracy, ties): accuracy = mean_i 1[r_c,i > r_r,i]; a tie r_c = r_r counts as wrong and is counted."""
    c, r = np.asarray(chosen, dtype=float), np.asarray(rejected, dtype=float)
    if c.shape != r.shape or c.ndim != 1 or not len(c):
        raise MetricError(
            f"pairwise accuracy needs equal, non-empty lists of rewards, got {c.shape} and {r.shape}"
        )
    return float(np.mean(c > r)), int(np.sum(c == r))


# ----------------------------------------------------------------------------------------------- ranks


def kendall_tau_b(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall τ-b = (C − D) / √((n₀ − n₁)(n₀ − n₂)), as ``scipy.stats.kendalltau`` computes it.

    C / D count concordant / discordant pairs, n₀ = n(n−1)/2, n₁ and n₂ the pairs tied in x and in y.
    NaN when either side is constant (or n < 2): no ranking to compare.
    """
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if a.shape != b.shape:
        raise MetricError(f"kendall tau needs equal lengths, got {len(a)} and {len(b)}")
    i, j = np.triu_indices(len(a), k=1)
    da, db = np.sign(a[i] - a[j]), np.sign(b[i] - b[j])
    n0 = len(i)
    n1, n2 = int(np.sum(da == 0)), int(np.sum(db == 0))
    denominator = math.sqrt((n0 - n1) * (n0 - n2))
    return float(np.sum(da * db) / denominator) if denominator > 0 else math.nan


def average_ranks(x: Sequence[float]) -> np.ndarray:
    """Ranks 1..n with tied values sharing the mean of their ranks."""
    values = np.asarray(x, dtype=float)
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(1, len(values) + 1)
    for value in np.unique(values):
        tied = values == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def spearman_rho(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman ρ = Pearson correlation of the average ranks (``scipy.stats.spearmanr``); NaN if a side is constant."""
    a, b = average_ranks(x), average_ranks(y)
    if len(a) != len(b):
        raise MetricError(f"spearman rho needs equal lengths, got {len(a)} and {len(b)}")
    a, b = a - a.mean(), b - b.mean()
    denominator = math.sqrt(float(np.sum(a * a) * np.sum(b * b)))
    return float(np.sum(a * b) / denominator) if denominator > 0 else math.nan


def per_prompt_correlations(
    gold: Mapping[str, Sequence[float]],
    predicted: Mapping[str, Sequence[float]],
    correlation: Callable[[Sequence[float], Sequence[float]], float] = kendall_tau_b,
) -> dict[str, float]:
    """Correlation between gold and predicted scores of each prompt's responses, keyed by prompt id.

    Both mappings must hold the same ids with the same number of responses; a prompt with fewer than two
    responses is an error (a ranking needs two). Constant gold or predictions give NaN for that prompt.
    """
    if set(gold) != set(predicted):
        missing, extra = sorted(set(gold) - set(predicted)), sorted(set(predicted) - set(gold))
        raise MetricError(
            f"ids of gold and predicted scores differ: {len(missing)} without predictions "
            f"{missing[:3]}, {len(extra)} without gold {extra[:3]}"
        )
    result = {}
    for key, gold_scores in gold.items():
        if len(gold_scores) != len(predicted[key]):
            raise MetricError(
                f"prompt '{key}': {len(gold_scores)} gold scores but {len(predicted[key])} predictions"
            )
        if len(gold_scores) < 2:
            raise MetricError(
                f"prompt '{key}' has {len(gold_scores)} response(s); a rank correlation needs at least 2"
            )
        result[key] = correlation(gold_scores, predicted[key])
    return result


def nan_mean(values: Sequence[float]) -> float:
    """Mean ignoring NaN; NaN if every value is NaN (or there are none)."""
    v = np.asarray(values, dtype=float)
    finite = v[~np.isnan(v)]
    return float(finite.mean()) if len(finite) else math.nan


# ----------------------------------------------------------------------------------------------- benchmarks


def rewardbench_v1_sections(accuracy: Mapping[str, float]) -> dict[str, float]:
    """Section scores Σ acc_s·n_s / Σ n_s over the subsets present, with the benchmark's fixed counts n_s
    (``REWARDBENCH_EXAMPLE_COUNTS``, whatever the file holds), and their mean as ``overall``.

    As ``calculate_scores_per_section`` in allenai/reward-bench (rewardbench/utils.py). One difference: a
    section with no subset present is left out here, where the reference scores it 0.
    """
    sections = {}
    for section, subsets in REWARDBENCH_SECTIONS.items():
        present = [s for s in subsets if s in accuracy]
        if present:
            total = sum(REWARDBENCH_EXAMPLE_COUNTS[s] for s in present)
            sections[section] = sum(accuracy[s] * REWARDBENCH_EXAMPLE_COUNTS[s] for s in present) / total
    if sections:
        sections["overall"] = sum(sections.values()) / len(sections)
    return sections


def rewardbench_v1_missing(accuracy: Mapping[str, float]) -> list[str]:
    """The benchmark's subsets absent from a file that has some RewardBench v1 subsets."""
    known = [s for subsets in REWARDBENCH_SECTIONS.values() for s in subsets]
    return [s for s in known if s not in accuracy] if any(s in accuracy for s in known) else []


def best_of_n_credit(chosen: float, rejected: Sequence[float]) -> float:
    """RewardBench v2 best-of-n credit of one record: 1/k when the chosen reward equals the maximum of all
    rewards and k responses share that maximum, else 0 (``reroll_and_score_dataset`` in
    allenai/reward-bench, rewardbench/utils.py: ``1 / np.sum(scores == max_val) if scores[0] == max_val``)."""
    scores = [chosen, *rejected]
    top = max(scores)
    return 1.0 / sum(score == top for score in scores) if chosen == top else 0.0


def rewardbench_v2_ties(
    prompts: Sequence[tuple[str, int, Sequence[float], Sequence[float]]],
) -> dict[str, float]:
    """RewardBench v2 'Ties' score from (kind, prompt number, correct rewards, incorrect rewards) per record.

    kind is 'ref' (one correct answer) or 'tied' (several equally correct ones). Per record:
    accurate = min(correct) − max(incorrect) > 0, spread = max(correct) − min(correct) (tied records),
    gap = min(correct) − max(incorrect). Over prompts with both kinds:
    preferred = mean[gap_tied > spread], preferred_hard = mean[min(gap_ref, gap_tied) > spread],
    margin = mean tanh(min(gap_ref, gap_tied)/spread − 1) (NaN → 0). Score =
    0.3·acc_tied + 0.3·acc_ref + 0.2·preferred + 0.2·preferred_hard + 0.01·margin.
    """
    ref, tied = {}, {}
    for kind, number, correct, incorrect in prompts:
        if not correct or not incorrect:
            raise MetricError(f"ties record {kind}:{number} needs correct and incorrect responses")
        gap = min(correct) - max(incorrect)
        spread = max(correct) - min(correct) if len(correct) > 1 else math.nan
        (ref if kind == "ref" else tied)[number] = (gap > 0, spread, gap)
    acc_ref = float(np.mean([s[0] for s in ref.values()])) if ref else 0.0
    acc_tied = float(np.mean([s[0] for s in tied.values()])) if tied else 0.0
    both = sorted(set(ref) & set(tied))
    spread = np.array([tied[p][1] for p in both])
    gap_tied = np.array([tied[p][2] for p in both])
    hard_gap = np.minimum(np.array([ref[p][2] for p in both]), gap_tied)
    with np.errstate(divide="ignore", invalid="ignore"):
        preferred = float(np.mean(gap_tied > spread)) if both else 0.0
        preferred_hard = float(np.mean(hard_gap > spread)) if both else 0.0
        margin = float(np.mean(np.nan_to_num(np.tanh(hard_gap / spread - 1), nan=0.0))) if both else 0.0
    score = 0.3 * acc_tied + 0.3 * acc_ref + 0.2 * preferred + 0.2 * preferred_hard + 0.01 * margin
    return {
        "score": score,
        "accuracy_ref": acc_ref,
        "accuracy_tied": acc_tied,
        "correctness_preferred": preferred,
        "correctness_preferred_hard": preferred_hard,
        "margin_score": margin,
    }


def rmbench_matrix(chosen: np.ndarray, rejected: np.ndarray) -> dict[str, object]:
    """RM-Bench 3×3 accuracy matrix M[i][j] = mean_n 1[r(chosen_n,i) > r(rejected_n,j)] and its levels.

    Styles are ordered concise, detailed plain, detailed markdown. hard = mean of the upper triangle
    (i < j: the chosen answer is plainer than the rejected one), normal = the diagonal, easy = the lower
    triangle; ``accuracy`` is the mean of all nine cells.
    """
    c, r = np.asarray(chosen, dtype=float), np.asarray(rejected, dtype=float)
    if c.ndim != 2 or c.shape != r.shape or c.shape[1] != 3:
        raise MetricError(f"RM-Bench needs N×3 chosen and rejected rewards, got {c.shape} and {r.shape}")
    matrix = (c[:, :, None] > r[:, None, :]).mean(axis=0)
    upper, lower = np.triu_indices(3, k=1), np.tril_indices(3, k=-1)
    return {
        "matrix": matrix.tolist(),
        "hard": float(matrix[upper].mean()),
        "normal": float(np.trace(matrix) / 3),
        "easy": float(matrix[lower].mean()),
        "accuracy": float(matrix.mean()),
    }


def rmbench_domain(subset: str) -> str:
    """RM-Bench's domain of a record's ``subset``: safety-refuse and safety-response are one domain, safety."""
    return "safety" if str(subset).startswith("safety") else str(subset)


def rmbench_scores(
    chosen: np.ndarray, rejected: np.ndarray, subsets: Sequence[str | None]
) -> dict[str, object]:
    """RM-Bench levels per domain and their unweighted mean over domains (THU-KEG/RM-Bench scripts/utils.py:
    the domain comes from ``subset``; hard, normal, easy and the total average the domains, not the records).
    Records without a subset form one domain."""
    domains = np.array([rmbench_domain(s) if s is not None else "all" for s in subsets], dtype=object)
    per_domain = {
        d: {
            k: v
            for k, v in rmbench_matrix(chosen[domains == d], rejected[domains == d]).items()
            if k != "matrix"
        }
        for d in sorted(set(domains))
    }
    levels = {
        k: float(np.mean([scores[k] for scores in per_domain.values()]))
        for k in ("hard", "normal", "easy", "accuracy")
    }
    return {**levels, "matrix": rmbench_matrix(chosen, rejected)["matrix"], "domains": per_domain}


# ----------------------------------------------------------------------------------------------- diagnostics


def effective_rank(matrix: np.ndarray) -> float:
    """Roy & Vetterli (2007): exp(−Σ_k p_k log p_k) with p_k = σ_k / Σ σ of the singular values (0·log 0 = 0)."""
    sigma = np.linalg.svd(np.asarray(matrix, dtype=float), compute_uv=False)
    total = sigma.sum()
    if total <= 0:
        return 0.0
    p = sigma[sigma > 0] / total
    return float(np.exp(-np.sum(p * np.log(p))))


def skewness(values: Sequence[float]) -> float:
    """Sample skewness m₃ / m₂^{3/2} (biased moments, ``scipy.stats.skew`` default); NaN for constant values."""
    v = np.asarray(values, dtype=float)
    centred = v - v.mean()
    m2 = float(np.mean(centred**2))
    return float(np.mean(centred**3) / m2**1.5) if m2 > 0 else math.nan
