"""Evaluation files → what to score (``EvalSet``) and, given the rewards, their metrics (``file_metrics``).

Kinds (the :data:`EVAL_KINDS` registry), detected from the first row (docs/evaluation.md):
    rankings      multi-response records with gold scores (UltraFeedback layout; the val2–val4 splits; the BSR
                  paper's τ files, ``response_i_text`` + ``all_scores``): Kendall τ-b and Spearman ρ per
                  prompt, averaged ignoring NaN, with bootstrap intervals
    pairs         any pair format training reads (TRL, HH-RLHF, Unified-Feedback), RewardBench v1 rows
                  (``subset``) and HHH-style rows (``input`` + ``targets.choices/labels``): accuracy with
                  ties counted, per subset, and the RewardBench v1 section scores when its subsets appear
    rewardbench2  ``chosen`` and ``rejected`` are lists of texts: best-of-n per subset, the Ties subset
                  scored as RewardBench v2 does, overall = mean of the subset scores
    rmbench       ``chosen`` and ``rejected`` are three texts each: the 3×3 matrix, hard / normal / easy
and the 2025–26 benchmarks of :mod:`rmguard.eval.benchmarks` (JudgeBench, RMB, PPE), registered there.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rmguard.data import read_rows, to_pairs
from rmguard.data.formats import as_reply, as_user_turn, check_text
from rmguard.data.records import Text
from rmguard.data.response_sets import is_tau_row, parse_response_set
from rmguard.errors import DataError
from rmguard.eval import metrics as rm
from rmguard.eval.intervals import bootstrap_interval
from rmguard.registry import Registry


@dataclass
class EvalSet:
    """A file flattened into (prompt, response) items plus the structure that groups them.

    ``groups[k]`` lists item indices: [chosen, rejected] for pairs, one per response for rankings,
    chosen… then rejected… for rewardbench2, chosen×3 then rejected×3 for rmbench.
    """

    name: str
    path: str
    kind: str
    prompts: list[Text] = field(default_factory=list)
    responses: list[Text] = field(default_factory=list)
    groups: list[list[int]] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    subsets: list[str | None] = field(default_factory=list)
    gold: list[list[float]] = field(default_factory=list)  # rankings: gold score per response
    num_correct: list[int] = field(default_factory=list)  # rewardbench2: chosen count per group
    models: list[str | None] = field(default_factory=list)  # per item, when the file names them
    meta: list[dict[str, Any]] = field(default_factory=list)  # per group, what a benchmark's rule reads

    def add(
        self,
        prompt: Text,
        responses: list[Text],
        identifier: str,
        subset: str | None = None,
        models: list[str | None] | None = None,
    ) -> None:
        start = len(self.responses)
        self.prompts.extend([prompt] * len(responses))
        self.responses.extend(responses)
        self.models.extend(models or [None] * len(responses))
        self.groups.append(list(range(start, start + len(responses))))
        self.ids.append(identifier)
        self.subsets.append(subset)


Rows = list[tuple[int, dict[str, Any]]]
Metric = Callable[
    [EvalSet, np.ndarray, int, int], dict[str, Any]
]  # (set, rewards, seed, resamples) → numbers


@dataclass(frozen=True)
class EvalKind:
    """One entry of :data:`EVAL_KINDS`: ``detect(row)`` says whether a first row is of this kind,
    ``read(rows, spec, eval_set)`` fills the set from the file's rows, ``metrics`` are the metric functions
    whose numbers the file's summary reports, and ``primary`` names the headline one. A metric a kind
    should report is one more function in its ``metrics``."""

    detect: Callable[[dict[str, Any]], bool]
    read: Callable[[Rows, str, EvalSet], None]
    metrics: list[Metric]
    primary: str


def detect_kind(row: dict[str, Any]) -> str:
    """The kind of a first row; kinds registered later are tried first (``pairs`` takes the rest)."""
    return next(name for name, kind in reversed(EVAL_KINDS.items()) if kind.detect(row))


def load_eval_set(spec: str, kind: str = "auto") -> EvalSet:
    """Read one evaluation file; bad rows raise :class:`DataError` with file, line and field."""
    rows = read_rows(spec)
    kind = detect_kind(rows[0][1]) if kind == "auto" else kind
    entry = EVAL_KINDS.lookup(kind, ("auto",), spec)
    out = EvalSet(Path(spec).name.split(".")[0], spec, kind)
    entry.read(rows, spec, out)
    if not out.groups:
        raise DataError(spec, "no records to evaluate")
    return out


def _read_rankings(rows: Rows, spec: str, out: EvalSet) -> None:
    seen: set[str] = set()
    for number, row in rows:
        item = parse_response_set(row, spec, number, require_gold=True)
        if item.id in seen:
            raise DataError(spec, f"duplicate id '{item.id}'", row=number, field="id")
        seen.add(item.id)
        if len(item.completions) < 2:
            raise DataError(
                spec,
                f"{len(item.completions)} response for this prompt; Kendall τ needs at least 2 per prompt",
                row=number,
                field="completions",
            )
        out.add(
            item.chat_prompt,
            [item.chat_response(i) for i in range(len(item.completions))],
            item.id,
            row.get("subset"),
            [c.model for c in item.completions],
        )
        out.gold.append(item.golds)


def _read_pairs(rows: Rows, spec: str, out: EvalSet) -> None:
    by_number = dict(rows)
    if "targets" in rows[0][1]:
        rows = [(number, _hhh_row(row, spec, number)) for number, row in rows]
    # Benchmarks (RewardBench v1, HHH) hold a user question and assistant answers as plain strings and
    # are scored as chat, as RewardBench does; other text pairs stay text, as training reads them.
    benchmark = "subset" in rows[0][1]
    pairs, _ = to_pairs(rows, spec)
    for pair in pairs:
        row = by_number[pair.row]
        models = [row.get("chosen_model"), row.get("rejected_model")]
        prompt, responses = pair.prompt, [pair.chosen, pair.rejected]
        if benchmark and not pair.is_conversational:
            prompt, responses = as_user_turn(prompt), [as_reply(r) for r in responses]
        out.add(prompt, responses, str(row.get("id", pair.row)), row.get("subset"), models)


def _read_lists(rows: Rows, spec: str, out: EvalSet) -> None:
    """RewardBench v2 and RM-Bench rows: a prompt and lists of chosen and rejected texts."""
    size = 3 if out.kind == "rmbench" else None
    for number, row in rows:
        prompt = as_user_turn(check_text(row.get("prompt"), spec, number, "prompt"))
        chosen = _text_list(row, "chosen", spec, number, size)
        rejected = _text_list(row, "rejected", spec, number, size)
        # RM-Bench's domain is its `domain` field (total_dataset.json); its per-domain files have none and
        # their `subset` names a source (alpacaeval, xstest-…), so such a file is one pool, as the reference.
        subset = row.get("domain") if out.kind == "rmbench" else row.get("subset")
        out.add(prompt, [as_reply(t) for t in chosen + rejected], str(row.get("id", number)), subset)
        out.num_correct.append(len(chosen))


def _text_lists(row: dict[str, Any]) -> bool:
    chosen = row.get("chosen")
    return isinstance(chosen, list) and bool(chosen) and all(isinstance(x, str) for x in chosen)


def _is_rmbench(row: dict[str, Any]) -> bool:
    rejected = row.get("rejected")
    return (
        _text_lists(row)
        and "num_correct" not in row
        and len(row["chosen"]) == 3
        and isinstance(rejected, list)
        and len(rejected) == 3
    )


def _text_list(row: dict[str, Any], name: str, spec: str, number: int, size: int | None) -> list[str]:
    value = row.get(name)
    if not isinstance(value, list) or not value or (size is not None and len(value) != size):
        wanted = f"{size} texts" if size else "a non-empty list of texts"
        raise DataError(spec, f"expected {wanted}", row=number, field=name)
    return [check_text(t, spec, number, f"{name}[{i}]") for i, t in enumerate(value)]


def _hhh_row(row: dict[str, Any], spec: str, number: int) -> dict[str, Any]:
    """HHH-alignment (BIG-bench) rows {input, targets: {choices, labels}} as a TRL pair."""
    targets = row.get("targets")
    if (
        not isinstance(targets, dict)
        or len(targets.get("choices") or []) != 2
        or sorted(targets.get("labels") or []) != [0, 1]
    ):
        raise DataError(
            spec, "expected targets with two choices and labels [1, 0]", row=number, field="targets"
        )
    best = targets["labels"].index(1)
    return {
        "prompt": row.get("input"),
        "chosen": targets["choices"][best],
        "rejected": targets["choices"][1 - best],
        **({"subset": row["subset"]} if "subset" in row else {}),
    }


# ----------------------------------------------------------------------------------------------- metrics


def with_ci(name: str, values: np.ndarray, seed: int, resamples: int) -> dict[str, float]:
    mean, low, high = bootstrap_interval(values, resamples=resamples, seed=seed)
    return {name: mean, f"{name}_ci_low": low, f"{name}_ci_high": high}


def pair_correct(eval_set: EvalSet, rewards: np.ndarray) -> np.ndarray:
    """Per pair of a pairs file: 1.0 where the chosen response scores strictly higher (a tie is wrong)."""
    chosen = np.array([rewards[g[0]] for g in eval_set.groups], dtype=float)
    rejected = np.array([rewards[g[1]] for g in eval_set.groups], dtype=float)
    return (chosen > rejected).astype(float)


def prompt_correlations(
    eval_set: EvalSet, rewards: np.ndarray, correlation: Any = rm.kendall_tau_b
) -> np.ndarray:
    """Per prompt of a rankings file: the rank correlation of rewards with gold scores (NaN if constant)."""
    gold = {i: g for i, g in zip(eval_set.ids, eval_set.gold)}
    predicted = {i: [rewards[k] for k in group] for i, group in zip(eval_set.ids, eval_set.groups)}
    return np.array(list(rm.per_prompt_correlations(gold, predicted, correlation).values()))


def file_metrics(
    eval_set: EvalSet, rewards: np.ndarray, seed: int = 0, resamples: int = 1000
) -> dict[str, Any]:
    """Metrics of one file from the rewards of its items (same order as ``eval_set.responses``): the
    numbers of each metric function of its kind (:data:`EVAL_KINDS`) and ``primary``, the headline."""
    rewards = np.asarray(rewards, dtype=float)
    if len(rewards) != len(eval_set.responses):
        raise rm.MetricError(
            f"{eval_set.path}: {len(rewards)} rewards for {len(eval_set.responses)} responses"
        )
    kind = EVAL_KINDS[eval_set.kind]
    summary: dict[str, Any] = {"kind": eval_set.kind, "path": eval_set.path}
    for metric in kind.metrics:
        summary.update(metric(eval_set, rewards, seed, resamples))
    summary["primary"] = kind.primary
    return summary


def _pair_accuracy(eval_set: EvalSet, rewards: np.ndarray, seed: int, resamples: int) -> dict[str, Any]:
    correct = pair_correct(eval_set, rewards)
    _, ties = rm.pairwise_accuracy(
        [rewards[g[0]] for g in eval_set.groups], [rewards[g[1]] for g in eval_set.groups]
    )
    return {"pairs": len(correct), "ties": ties, **with_ci("accuracy", correct, seed, resamples)}


def _subset_accuracy(eval_set: EvalSet, rewards: np.ndarray, seed: int, resamples: int) -> dict[str, Any]:
    """Accuracy per subset, and RewardBench v1's section scores when its subsets appear."""
    subset_acc, subset_n = _by_subset(eval_set, pair_correct(eval_set, rewards))
    if not subset_acc:
        return {}
    summary: dict[str, Any] = {
        "subsets": {s: {"accuracy": subset_acc[s], "pairs": subset_n[s]} for s in subset_acc}
    }
    sections = rm.rewardbench_v1_sections(subset_acc)
    if sections:
        summary["rewardbench_v1"] = sections
        summary["rewardbench_v1_missing_subsets"] = rm.rewardbench_v1_missing(subset_acc)
    return summary


def _rank_correlations(eval_set: EvalSet, rewards: np.ndarray, seed: int, resamples: int) -> dict[str, Any]:
    tau = prompt_correlations(eval_set, rewards)
    rho = prompt_correlations(eval_set, rewards, rm.spearman_rho)
    return {
        "prompts": len(tau),
        "responses": len(rewards),
        "prompts_nan_tau": int(np.isnan(tau).sum()),
        **with_ci("kendall_tau", tau, seed, resamples),
        **with_ci("spearman", rho, seed, resamples),
    }


def _rmbench(eval_set: EvalSet, rewards: np.ndarray, seed: int, resamples: int) -> dict[str, Any]:
    chosen = np.array([[rewards[k] for k in g[:3]] for g in eval_set.groups])
    rejected = np.array([[rewards[k] for k in g[3:]] for g in eval_set.groups])
    return {"records": len(chosen), **rm.rmbench_scores(chosen, rejected, eval_set.subsets)}


def _by_subset(eval_set: EvalSet, correct: np.ndarray) -> tuple[dict[str, float], dict[str, int]]:
    sums: dict[str, list[float]] = defaultdict(list)
    for subset, value in zip(eval_set.subsets, correct):
        if subset is not None:
            sums[str(subset)].append(float(value))
    return {s: sum(v) / len(v) for s, v in sums.items()}, {s: len(v) for s, v in sums.items()}


def _rewardbench2(eval_set: EvalSet, rewards: np.ndarray, seed: int, resamples: int) -> dict[str, Any]:
    correct, ties_records, tied_with_best = [], [], 0
    subsets: list[str] = []
    for group, n_correct, subset, identifier in zip(
        eval_set.groups, eval_set.num_correct, eval_set.subsets, eval_set.ids
    ):
        scores = [rewards[k] for k in group]
        if str(subset).lower() == "ties":
            kind, _, number = identifier.partition(":")
            ties_records.append((kind, number, scores[:n_correct], scores[n_correct:]))
            continue
        if n_correct != 1:
            raise rm.MetricError(
                f"{eval_set.path}: record {identifier} has {n_correct} chosen responses; best-of-n "
                "needs exactly one outside the Ties subset"
            )
        correct.append(rm.best_of_n_credit(scores[0], scores[1:]))
        tied_with_best += int(scores[0] == max(scores[1:]))
        subsets.append(str(subset))
    result: dict[str, Any] = {"records": len(eval_set.groups), "ties_with_best_rejected": tied_with_best}
    subset_scores: dict[str, float] = {}
    if correct:
        result.update(with_ci("accuracy", np.array(correct), seed, resamples))
        for name in sorted(set(subsets)):
            subset_scores[name] = float(np.mean([c for c, s in zip(correct, subsets) if s == name]))
    if ties_records:
        ties = rm.rewardbench_v2_ties(ties_records)
        result["ties"] = ties
        subset_scores["Ties"] = ties["score"]
    result["subsets"] = subset_scores
    result["score"] = float(np.mean(list(subset_scores.values()))) if subset_scores else math.nan
    return result


# The kinds of evaluation file (docs/evaluation.md): name → detection, reader and metrics.
EVAL_KINDS: Registry[EvalKind] = Registry(
    "evaluation format",
    {
        "pairs": EvalKind(lambda row: True, _read_pairs, [_pair_accuracy, _subset_accuracy], "accuracy"),
        "rewardbench2": EvalKind(_text_lists, _read_lists, [_rewardbench2], "score"),
        "rmbench": EvalKind(_is_rmbench, _read_lists, [_rmbench], "accuracy"),
        "rankings": EvalKind(
            lambda row: "completions" in row or is_tau_row(row),
            _read_rankings,
            [_rank_correlations],
            "kendall_tau",
        ),
    },
)

# The 2025–26 benchmarks register their kinds in EVAL_KINDS; imported last, as they build on this module.
from rmguard.eval import benchmarks  # noqa: E402, F401
