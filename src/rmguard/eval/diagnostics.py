"""``rmguard diagnose``: the hidden-state evidence of Hong et al. (2025), as numbers (JSON) and plots (PNG).

Per model and data file: ‖h(x, y)‖ of the final hidden state at the reward token for every response
(box plots, the paper's Figure 3), reward mean / std / skew, and the effective rank of the N×H hidden-state
matrix (Table 1). Per model: ‖W_p‖ of a linear head. Across the saved checkpoints of a run (its
``checkpoints/checkpoint-N`` folders, then the final model): the distribution of ‖h(x, y_w) − h(x, y_l)‖
over the pairs of the first pair-bearing file (Figure 2: mean with a ±std band).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from rmguard.errors import ConfigError
from rmguard.eval import metrics as rm
from rmguard.eval.eval_sets import EvalSet, load_eval_set
from rmguard.eval.evaluation import score_eval_set, unique_labels
from rmguard.fileio import atomic_directory, atomic_write_json
from rmguard.scoring import RewardScorer
from rmguard.training.checkpoints import list_checkpoints, load_checkpoint_weights
from rmguard.training.modeling import read_metadata

RESULTS_FILE = "diagnostics.json"


def distribution(values: np.ndarray) -> dict[str, float]:
    """Mean, std, skew and the five box-plot quantiles of a sample."""
    v = np.asarray(values, dtype=float)
    q = np.quantile(v, [0.0, 0.25, 0.5, 0.75, 1.0])
    return {
        "mean": float(v.mean()),
        "std": float(v.std()),
        "skew": rm.skewness(v),
        "min": float(q[0]),
        "q1": float(q[1]),
        "median": float(q[2]),
        "q3": float(q[3]),
        "max": float(q[4]),
        "n": int(len(v)),
    }


def head_norm(head: nn.Module) -> float | None:
    """‖W_p‖ (Frobenius) of a linear reward head; None for an MLP head, which has no single W_p."""
    return float(head.weight.detach().float().norm()) if isinstance(head, nn.Linear) else None


def preference_pairs(eval_set: EvalSet) -> list[tuple[int, int]]:
    """(preferred, dispreferred) item indices: the pairs of a pair file, best vs worst gold of a ranking file."""
    if eval_set.kind == "pairs":
        return [(g[0], g[1]) for g in eval_set.groups]
    if eval_set.kind == "rankings":
        pairs = []
        for group, gold in zip(eval_set.groups, eval_set.gold):
            if max(gold) > min(gold):
                pairs.append((group[int(np.argmax(gold))], group[int(np.argmin(gold))]))
        return pairs
    return []


def _pair_subset(eval_set: EvalSet, pairs: list[tuple[int, int]]) -> EvalSet:
    items = [i for pair in pairs for i in pair]
    subset = EvalSet(eval_set.name, eval_set.path, "pairs")
    for k in range(0, len(items), 2):
        subset.add(
            eval_set.prompts[items[k]],
            [eval_set.responses[items[k]], eval_set.responses[items[k + 1]]],
            str(k // 2),
        )
    return subset


def _pair_distance(scorer: RewardScorer, pairs_set: EvalSet) -> np.ndarray:
    _, hidden = score_eval_set(scorer, pairs_set)
    return np.linalg.norm(hidden[0::2] - hidden[1::2], axis=1)


def diagnose(
    models: Sequence[str | Path],
    data_files: Sequence[str],
    output_dir: str | Path,
    batch_size: int = 16,
    max_length: int | None = None,
    max_pairs: int = 512,
) -> dict[str, Any]:
    """Compute every diagnostic, write ``diagnostics.json`` and the PNG plots into ``output_dir``; returns the JSON."""
    sets = [load_eval_set(str(path)) for path in data_files]
    file_labels = unique_labels([s.name for s in sets], [s.path for s in sets])
    labels = unique_labels([Path(m).name for m in models], models)
    pair_source = next(((label, s) for label, s in zip(file_labels, sets) if preference_pairs(s)), None)
    pairs_set = (
        _pair_subset(pair_source[1], preference_pairs(pair_source[1])[:max_pairs]) if pair_source else None
    )
    results: dict[str, Any] = {
        "models": {},
        "data": dict(zip(file_labels, (s.path for s in sets))),
        "pair_distance_data": pair_source[0] if pair_source else None,
    }
    norms: dict[str, dict[str, np.ndarray]] = {}
    for label, model in zip(labels, models):
        scorer = RewardScorer(model, batch_size=batch_size, max_length=max_length)
        per_file, norms[label] = {}, {}
        for file_label, eval_set in zip(file_labels, sets):
            rewards, hidden = score_eval_set(scorer, eval_set)
            norms[label][file_label] = np.linalg.norm(hidden, axis=1)
            per_file[file_label] = {
                "hidden_norm": distribution(norms[label][file_label]),
                "hidden_norms": norms[label][file_label].tolist(),
                "reward": distribution(rewards),
                "effective_rank": rm.effective_rank(hidden),
                "hidden_size": int(hidden.shape[1]),
            }
        entry: dict[str, Any] = {
            "path": str(model),
            "head_norm": head_norm(scorer.model.head),
            "files": per_file,
        }
        if pairs_set is not None:
            entry["pair_distance_over_training"] = _over_training(scorer, model, pairs_set)
        results["models"][label] = entry
        del scorer
    with atomic_directory(output_dir) as scratch:
        results["plots"] = _plots(results, norms, scratch)
        atomic_write_json(scratch / RESULTS_FILE, results)
    return results


def _over_training(scorer: RewardScorer, model: str | Path, pairs_set: EvalSet) -> list[dict[str, Any]]:
    """‖h(x,y_w) − h(x,y_l)‖ per pair at every saved checkpoint of the run, then at the final model."""
    final_step = read_metadata(model).get("global_step")
    points = [{"step": final_step, "checkpoint": "final", **distribution(_pair_distance(scorer, pairs_set))}]
    for checkpoint in list_checkpoints(model):
        try:
            step = load_checkpoint_weights(scorer.model, checkpoint)
        except ConfigError as error:
            points.append({"checkpoint": checkpoint.name, "error": str(error)})
            continue
        points.append(
            {"step": step, "checkpoint": checkpoint.name, **distribution(_pair_distance(scorer, pairs_set))}
        )
    # The final model was measured first (before its weights were replaced); report in training order, and
    # drop it when the last checkpoint is the same step.
    if any(p.get("step") == final_step for p in points[1:]):
        points = points[1:]
    return sorted(points, key=lambda p: (p.get("step") is None, p.get("step") or 0))


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def _plots(results: dict[str, Any], norms: dict[str, dict[str, np.ndarray]], folder: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for label, by_file in norms.items():
        figure, axes = plt.subplots(figsize=(1.6 + 1.4 * len(by_file), 4))
        axes.boxplot(list(by_file.values()), showfliers=True)
        axes.set_xticks(range(1, len(by_file) + 1), list(by_file), rotation=20, ha="right")
        axes.set_ylabel("‖h(x, y)‖")
        axes.set_title(f"{label}: final hidden-state norms")
        figure.tight_layout()
        name = f"hidden_norms_{_safe(label)}.png"
        figure.savefig(folder / name, dpi=120)
        plt.close(figure)
        written.append(name)
    curves = {
        label: [
            p
            for p in entry.get("pair_distance_over_training", [])
            if "mean" in p and p.get("step") is not None
        ]
        for label, entry in results["models"].items()
    }
    if any(curves.values()):
        figure, axes = plt.subplots(figsize=(6, 4))
        for label, points in curves.items():
            if not points:
                continue
            steps = np.array([p["step"] for p in points])
            mean, std = np.array([p["mean"] for p in points]), np.array([p["std"] for p in points])
            axes.plot(steps, mean, marker="o", label=label)
            axes.fill_between(steps, mean - std, mean + std, alpha=0.2)
        axes.set_xlabel("training step")
        axes.set_ylabel("‖h(x, y_w) − h(x, y_l)‖")
        axes.set_title(f"pair hidden-state distance ({results['pair_distance_data']})")
        axes.legend()
        figure.tight_layout()
        figure.savefig(folder / "pair_distance_over_training.png", dpi=120)
        plt.close(figure)
        written.append("pair_distance_over_training.png")
    return written
