"""``rmguard eval``: several reward models on several evaluation files, one JSON and one Markdown table.

Each model scores each file once (``RewardScorer.score_with_hidden``); ``eval_sets.file_metrics`` turns the
rewards into metrics. Files named like the ``rmguard split`` outputs form the scenario table (in-domain
accuracy, prompt-, response- and mutual-disjoint Kendall τ), the paper's Table 5 layout.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rmguard.eval.eval_sets import EvalSet, file_metrics, load_eval_set
from rmguard.fileio import atomic_write_json, check_outputs
from rmguard.scoring import RewardScorer

SCENARIO_COLUMNS = {
    "val1_in_domain": "In-domain acc",
    "val2_prompt_disjoint": "Prompt-disjoint τ",
    "val3_response_disjoint": "Response-disjoint τ",
    "val4_mutual_disjoint": "Mutual-disjoint τ",
}


def unique_labels(short: Sequence[str], full: Sequence[str | Path]) -> list[str]:
    """Short names (folder names, file stems), or the full paths where two short names coincide."""
    return [n if list(short).count(n) == 1 else str(f) for n, f in zip(short, full)]


def score_eval_set(scorer: RewardScorer, eval_set: EvalSet) -> tuple[np.ndarray, np.ndarray]:
    """Rewards [N] and final hidden states [N, H] of every item of a file, in item order."""
    rewards, hidden = scorer.score_with_hidden(eval_set.prompts, eval_set.responses)
    return rewards.numpy().astype(float), hidden.numpy()


def evaluate_models(
    models: Sequence[str | Path] | Mapping[str, str | Path | tuple[Any, Any]],
    data_files: Sequence[str],
    output: str | Path | None = None,
    batch_size: int = 16,
    max_length: int | None = None,
    seed: int = 0,
    resamples: int = 1000,
) -> dict[str, Any]:
    """Metrics of every model on every file: ``{"results": {model: {file: summary}}, "table", "scenario_table"}``.

    ``models`` is a list of checkpoint folders (labelled by folder name) or a mapping label → folder or an
    already loaded (model, tokenizer). Files are read (and checked) before any model is loaded. Written to
    ``output`` as JSON when given.
    """
    if output is not None:
        check_outputs([output], data_files)
    sets = [load_eval_set(str(path)) for path in data_files]
    file_labels = unique_labels([s.name for s in sets], [s.path for s in sets])
    if isinstance(models, Mapping):
        labels, models = list(models), list(models.values())
    else:
        labels = unique_labels([Path(m).name for m in models], models)
    results: dict[str, dict[str, Any]] = {}
    for label, model in zip(labels, models):
        scorer = RewardScorer(model, batch_size=batch_size, max_length=max_length)
        results[label] = {
            f: file_metrics(s, score_eval_set(scorer, s)[0], seed, resamples)
            for f, s in zip(file_labels, sets)
        }
        del scorer
    report = {
        "models": {
            label: str(model) if isinstance(model, (str, Path)) else "<in memory>"
            for label, model in zip(labels, models)
        },
        "data": {f: s.path for f, s in zip(file_labels, sets)},
        "seed": seed,
        "bootstrap_resamples": resamples,
        "results": results,
        "table": markdown_table(results),
        "scenario_table": scenario_table(results),
    }
    if output is not None:
        atomic_write_json(output, report)
    return report


def _cell(summary: dict[str, Any]) -> str:
    name = summary["primary"]
    value = summary.get(name, math.nan)
    low, high = summary.get(f"{name}_ci_low"), summary.get(f"{name}_ci_high")
    if low is None or high is None or math.isnan(low):
        return f"{value:.4f}"
    return f"{value:.4f} [{low:.3f}, {high:.3f}]"


def _table(results: dict[str, dict[str, Any]], columns: list[str], headers: list[str]) -> str:
    lines = ["| model | " + " | ".join(headers) + " |", "|---|" + "---|" * len(columns)]
    for label, by_file in results.items():
        lines.append(
            f"| {label} | " + " | ".join(_cell(by_file[c]) if c in by_file else "–" for c in columns) + " |"
        )
    return "\n".join(lines)


def markdown_table(results: dict[str, dict[str, Any]]) -> str:
    """Models × files, each cell the file's primary metric with its 95 % bootstrap interval."""
    files = list(next(iter(results.values())))
    headers = [f"{SCENARIO_COLUMNS.get(f, f)} ({next(iter(results.values()))[f]['primary']})" for f in files]
    return _table(results, files, headers)


def scenario_table(results: dict[str, dict[str, Any]]) -> str | None:
    """The four robustness scenarios side by side (only the ones present), or None when none is."""
    files = list(next(iter(results.values())))
    present = [f for f in SCENARIO_COLUMNS if f in files]
    return _table(results, present, [SCENARIO_COLUMNS[f] for f in present]) if present else None


def console_table(report: dict[str, Any]) -> str:
    """The one table ``rmguard eval`` prints: the scenarios side by side when every file is one of the four
    scenarios, else every file (scenario files under their scenario's name)."""
    scenarios_only = report["scenario_table"] and set(report["data"]) <= set(SCENARIO_COLUMNS)
    return report["scenario_table"] if scenarios_only else report["table"]
