"""``rmguard eval --suite standard``: every benchmark found in a data folder, scored by its official rule, in
one table.

A benchmark is found by its official names: each set sits in a folder named after its official repository
(``reward-bench``, ``PPE-MATH-Best-of-K``, ``RMB_dataset``, …) with its files under their published names
(:data:`SUITES` lists the patterns; docs/evaluation.md says how to fetch each). Every file is read and
checked before a model is loaded; each model then scores each set once, and each benchmark turns its
sets' metrics into one headline number (with a 95 % bootstrap interval where the rule is a mean over
units) and its subsets.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rmguard.errors import DataError
from rmguard.eval import metrics as rm
from rmguard.eval.benchmarks import ppe_pair_correct, rmb_correct
from rmguard.eval.eval_sets import EvalSet, file_metrics, load_eval_set, pair_correct
from rmguard.eval.intervals import stratified_interval
from rmguard.eval.rewordbench import RULE_MARK, TRANSFORMS, transform_set
from rmguard.fileio import atomic_write_json, check_outputs
from rmguard.registry import Registry

# A scored part of a benchmark: its set, the rewards of its items and the metrics of its kind.
Scored = tuple[EvalSet, np.ndarray, dict[str, Any]]
HUB = ("parquet", "jsonl", "json")  # a hub set's files, as downloaded or exported
PPE_CORRECTNESS = ("MMLU-Pro", "MATH", "GPQA", "IFEval", "MBPP-Plus")


@dataclass(frozen=True)
class Benchmark:
    """One benchmark of a suite: ``parts`` maps each part's name to glob patterns under the data folder
    (a part's files form one set; with ``by_stem`` each file is its own part, named by its stem), whose
    files must be of the ``kinds`` given; ``summarize(parts, seed, resamples)`` gives the benchmark's
    table rows from the scored parts present."""

    title: str
    kinds: tuple[str, ...]
    parts: Mapping[str, tuple[str, ...]]
    summarize: Callable[[dict[str, Scored], int, int], list[dict[str, Any]]]
    by_stem: bool = False


def _row(label: str, headline: str, value: float, interval=(None, None), subsets=None) -> dict[str, Any]:
    low, high = interval
    return {
        "label": label,
        "headline": headline,
        "value": value,
        "ci_low": low,
        "ci_high": high,
        "subsets": subsets or {},
    }


def _ci(summary: dict[str, Any], name: str) -> tuple[float | None, float | None]:
    return summary.get(f"{name}_ci_low"), summary.get(f"{name}_ci_high")


def _rewardbench(parts: dict[str, Scored], seed: int, resamples: int) -> list[dict[str, Any]]:
    eval_set, rewards, summary = parts["filtered"]
    sections = summary.get("rewardbench_v1")
    if not sections:
        raise rm.MetricError(f"{eval_set.path}: no RewardBench v1 subset in the file's 'subset' field")
    # overall = mean over sections of Σ acc_s·n_s / Σ n_s: subset s weighs n_s / (its section's n · sections)
    weights = {}
    for subsets in rm.REWARDBENCH_SECTIONS.values():
        present = [s for s in subsets if s in summary["subsets"]]
        total = sum(rm.REWARDBENCH_EXAMPLE_COUNTS[s] for s in present)
        weights.update({s: rm.REWARDBENCH_EXAMPLE_COUNTS[s] / total for s in present})
    correct, subsets = pair_correct(eval_set, rewards), [str(s) for s in eval_set.subsets]
    known = np.array([s in weights for s in subsets])
    _, low, high = stratified_interval(
        correct[known], np.array(subsets)[known], resamples=resamples, seed=seed, weights=weights
    )
    return [
        _row(
            "RewardBench",
            "score (mean of sections)",
            sections["overall"],
            (low, high),
            {k: v for k, v in sections.items() if k != "overall"},
        )
    ]


def _single(title: str, headline: str, name: str, subsets: Callable[[dict[str, Any]], dict[str, float]]):
    """A benchmark of one part whose headline is the metric ``name`` of its kind."""

    def summarize(parts: dict[str, Scored], seed: int, resamples: int) -> list[dict[str, Any]]:
        ((_, _, summary),) = parts.values()
        return [_row(title, headline, summary[name], _ci(summary, name), subsets(summary))]

    return summarize


def _judgebench(parts: dict[str, Scored], seed: int, resamples: int) -> list[dict[str, Any]]:
    rows = []
    for part, (_, _, s) in parts.items():
        subsets = {
            "macro average": s["macro_accuracy"],
            **s["categories"],
            "one order (--single_game)": s["single_game_accuracy"],
        }
        rows.append(
            _row(
                f"JudgeBench ({part})", "official average (micro)", s["accuracy"], _ci(s, "accuracy"), subsets
            )
        )
    return rows


def _ppe_correctness(parts: dict[str, Scored], seed: int, resamples: int) -> list[dict[str, Any]]:
    values, strata, subsets = [], [], {}
    for source, (eval_set, rewards, summary) in parts.items():
        correct = ppe_pair_correct(eval_set, rewards)
        values.extend(correct)
        strata.extend([source] * len(correct))
        subsets[f"{source} accuracy"] = summary.get("accuracy", math.nan)
        subsets[f"{source} best-of-{summary['best_of_k_k']}"] = summary["best_of_k"]
    mean, low, high = stratified_interval(values, strata, resamples=resamples, seed=seed)
    return [_row("PPE correctness", "accuracy (mean over sources)", mean, (low, high), subsets)]


def _rmb(parts: dict[str, Scored], seed: int, resamples: int) -> list[dict[str, Any]]:
    values, strata = [], []
    for part, (eval_set, rewards, _) in parts.items():
        correct = rmb_correct(eval_set, rewards)
        values.extend(correct)
        strata.extend(f"{rm.rmb_goal(p)} {part}" for p in eval_set.subsets)
    mean, low, high = stratified_interval(values, strata, resamples=resamples, seed=seed)
    cells = {
        name: float(np.mean([v for v, s in zip(values, strata) if s == name])) for name in sorted(set(strata))
    }
    return [_row("RMB", "mean of goal × pairwise/BoN", mean, (low, high), cells)]


def _rewordbench(parts: dict[str, Scored], seed: int, resamples: int) -> list[dict[str, Any]]:
    original_set, original_rewards, _ = parts["original"]
    original = dict(zip(original_set.ids, pair_correct(original_set, original_rewards)))
    values, strata, subsets = [], [], {}
    for name, (eval_set, rewards, _) in parts.items():
        if name == "original":
            continue
        transformed = dict(zip(eval_set.ids, pair_correct(eval_set, rewards)))
        drop = rm.rewordbench_drop(original, transformed)
        subsets[f"{name} accuracy"], subsets[f"{name} drop"] = drop["transformed"], drop["drop"]
        values.extend(transformed.values())
        strata.extend([name] * len(transformed))
    mean, low, high = stratified_interval(values, strata, resamples=resamples, seed=seed)
    subsets["original accuracy"] = float(np.mean(list(original.values())))
    rules = any(RULE_MARK in eval_set.path for eval_set, _, _ in parts.values())
    title = "reWordBench (rmguard's rule-based transformations)" if rules else "reWordBench"
    return [_row(title, "accuracy (mean over transformations)", mean, (low, high), subsets)]


def _hub(folder: str, stem: str = "*") -> tuple[str, ...]:
    return tuple(f"{folder}/**/{stem}.{ext}" for ext in HUB)


SUITES: Registry[dict[str, Benchmark]] = Registry(
    "suite",
    {
        "standard": {
            "rewardbench": Benchmark(
                "RewardBench", ("pairs",), {"filtered": _hub("reward-bench", "filtered*")}, _rewardbench
            ),
            "rewardbench2": Benchmark(
                "RewardBench 2",
                ("rewardbench2",),
                {"test": _hub("reward-bench-2", "test*")},
                _single("RewardBench 2", "score (mean of subsets)", "score", lambda s: s["subsets"]),
            ),
            "rmbench": Benchmark(
                "RM-Bench",
                ("rmbench",),
                {"total": ("RM-Bench/**/total_dataset.json",)},
                _single(
                    "RM-Bench",
                    "accuracy (mean over domains)",
                    "accuracy",
                    lambda s: {k: s[k] for k in ("hard", "normal", "easy")},
                ),
            ),
            "judgebench": Benchmark(
                "JudgeBench",
                ("judgebench",),
                {
                    "gpt-4o-2024-05-13": (
                        "**/dataset=judgebench,response_model=gpt-4o-2024-05-13.jsonl",
                        *_hub("JudgeBench", "gpt*"),
                    ),
                    "claude-3-5-sonnet-20240620": (
                        "**/dataset=judgebench,response_model=claude-3-5-sonnet-20240620.jsonl",
                        *_hub("JudgeBench", "claude*"),
                    ),
                },
                _judgebench,
            ),
            "ppe_preference": Benchmark(
                "PPE human preference",
                ("ppe_preference",),
                {"test": _hub("PPE-Human-Preference-V1")},
                _single(
                    "PPE human preference",
                    "accuracy",
                    "accuracy",
                    lambda s: {"ties left out": s["ties_left_out"]},
                ),
            ),
            "ppe_correctness": Benchmark(
                "PPE correctness",
                ("ppe_correctness",),
                {name: _hub(f"PPE-{name}-Best-of-K") for name in PPE_CORRECTNESS},
                _ppe_correctness,
            ),
            "rmb": Benchmark(
                "RMB",
                ("rmb_pairwise", "rmb_bon"),
                {
                    "pairwise": ("**/RMB_dataset/Pairwise_set/**/*.json",),
                    "BoN": ("**/RMB_dataset/BoN_set/**/*.json",),
                },
                _rmb,
            ),
            "rewordbench": Benchmark(
                "reWordBench",
                ("pairs",),
                {"transformations": _hub("reWordBench")},
                _rewordbench,
                by_stem=True,
            ),
        }
    },
)


def find_files(data_dir: Path, patterns: Sequence[str]) -> list[Path]:
    """The files under ``data_dir`` that match any pattern, sorted; the same file once."""
    found = {path for pattern in patterns for path in data_dir.glob(pattern) if path.is_file()}
    return sorted(found)


def merge_sets(name: str, sets: Sequence[EvalSet]) -> EvalSet:
    """One set from several files of one kind (RMB's scenario files, a hub set's shards), items in order."""
    merged = EvalSet(name, ", ".join(s.path for s in sets), sets[0].kind)
    for part in sets:
        offset = len(merged.responses)
        merged.groups.extend([i + offset for i in group] for group in part.groups)
        for attribute in ("prompts", "responses", "ids", "subsets", "gold", "num_correct", "models", "meta"):
            getattr(merged, attribute).extend(getattr(part, attribute))
    return merged


def _load(benchmark: Benchmark, part: str, files: list[Path]) -> EvalSet:
    sets = [load_eval_set(str(path)) for path in files]
    for eval_set in sets:
        if eval_set.kind not in benchmark.kinds:
            raise DataError(
                eval_set.path,
                f"read as a {eval_set.kind} file, but {benchmark.title} files are {' or '.join(benchmark.kinds)}",
            )
    by_kind: dict[str, list[EvalSet]] = {}
    for eval_set in sets:
        by_kind.setdefault(eval_set.kind, []).append(eval_set)
    if len(by_kind) > 1:
        raise DataError(
            files[0].parent.as_posix(), f"{benchmark.title} part '{part}' mixes kinds {sorted(by_kind)}"
        )
    return merge_sets(part, sets)


def discover(data_dir: Path, suite: str = "standard", rewordbench_rules: bool = False) -> tuple[dict, dict]:
    """(present, absent): ``present[benchmark][part]`` is the part's loaded set; ``absent[benchmark]`` the
    patterns that found nothing. Every file is read and checked here, before any model is loaded."""
    if not data_dir.is_dir():
        raise DataError(str(data_dir), "no such folder")
    present: dict[str, dict[str, EvalSet]] = {}
    absent: dict[str, list[str]] = {}
    for key, benchmark in SUITES.lookup(suite).items():
        parts: dict[str, EvalSet] = {}
        for part, patterns in benchmark.parts.items():
            files = find_files(data_dir, patterns)
            if benchmark.by_stem:
                parts.update({path.stem.split(".")[0]: _load(benchmark, path.stem, [path]) for path in files})
            elif files:
                parts[part] = _load(benchmark, part, files)
        if parts:
            present[key] = parts
        else:
            absent[key] = [p for patterns in benchmark.parts.values() for p in patterns]
    _complete_rewordbench(present, absent, rewordbench_rules, data_dir)
    if not present:
        raise DataError(
            str(data_dir), "no benchmark set found under its official name (docs/evaluation.md lists them)"
        )
    return present, absent


def _complete_rewordbench(present: dict, absent: dict, rules: bool, data_dir: Path) -> None:
    """reWordBench's original pairs are RewardBench v1's unless its folder has ``original``; without its
    folder, ``rules`` builds the rule-based transformations of RewardBench v1."""
    rewardbench = present.get("rewardbench", {}).get("filtered")
    if "rewordbench" not in present and rules and rewardbench is not None:
        present["rewordbench"] = {name: transform_set(rewardbench, name) for name in TRANSFORMS}
        absent.pop("rewordbench", None)
    parts = present.get("rewordbench")
    if parts is not None and "original" not in parts:
        if rewardbench is None:
            raise DataError(
                str(data_dir / "reWordBench"),
                "the original pairs are missing: put original.jsonl in reWordBench/ or the reward-bench set beside it",
            )
        parts["original"] = rewardbench


def score_suite(
    scorer: Any, present: dict, seed: int, resamples: int, suite: str = "standard"
) -> tuple[dict, dict]:
    """(rows, parts) for one model: each present benchmark's table rows, and the full metrics of each of
    its parts (per-subset and per-scenario numbers, the best-of-K curve). Each distinct set is scored once."""
    from rmguard.eval.evaluation import score_eval_set

    rewards: dict[int, np.ndarray] = {}
    rows, details = {}, {}
    for key, parts in present.items():
        scored = {}
        for part, eval_set in parts.items():
            if id(eval_set) not in rewards:
                rewards[id(eval_set)] = score_eval_set(scorer, eval_set)[0]
            values = rewards[id(eval_set)]
            scored[part] = (eval_set, values, file_metrics(eval_set, values, seed, resamples))
        rows[key] = SUITES.lookup(suite)[key].summarize(scored, seed, resamples)
        details[key] = {part: summary for part, (_, _, summary) in scored.items()}
    return rows, details


def evaluate_suite(
    models: Sequence[str | Path],
    data_dir: str | Path,
    output: str | Path | None = None,
    batch_size: int = 16,
    max_length: int | None = None,
    seed: int = 0,
    resamples: int = 1000,
    suite: str = "standard",
    rewordbench_rules: bool = False,
) -> dict[str, Any]:
    """Every benchmark of ``suite`` found in ``data_dir``, for every model: ``{"results": {model: {benchmark:
    rows}}, "details": {model: {benchmark: {part: metrics}}}, "present", "absent", "table"}``, written to
    ``output`` as JSON when given."""
    from rmguard.eval.evaluation import unique_labels
    from rmguard.scoring import RewardScorer

    if output is not None:
        check_outputs([output], [data_dir])
    present, absent = discover(Path(data_dir), suite, rewordbench_rules)
    labels = unique_labels([Path(m).name for m in models], models)
    results, details = {}, {}
    for label, model in zip(labels, models):
        scorer = RewardScorer(model, batch_size=batch_size, max_length=max_length)
        results[label], details[label] = score_suite(scorer, present, seed, resamples, suite)
        del scorer
    benchmarks = SUITES.lookup(suite)
    report = {
        "suite": suite,
        "data_dir": str(data_dir),
        "models": {label: str(model) for label, model in zip(labels, models)},
        "seed": seed,
        "bootstrap_resamples": resamples,
        "present": {k: {part: s.path for part, s in parts.items()} for k, parts in present.items()},
        "absent": {benchmarks[k].title: patterns for k, patterns in absent.items()},
        "results": results,
        "details": details,
        "table": suite_table(results, {benchmarks[k].title: p for k, p in absent.items()}),
    }
    if output is not None:
        atomic_write_json(output, report)
    return report


def _number(value: Any, low: Any = None, high: Any = None) -> str:
    if not isinstance(value, (int, float)) or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, int):
        return str(value)
    if low is None or high is None or math.isnan(low):
        return f"{value:.4f}"
    return f"{value:.4f} [{low:.3f}, {high:.3f}]"


def suite_table(
    results: dict[str, dict[str, list[dict[str, Any]]]], absent: Mapping[str, Sequence[str]]
) -> str:
    """Benchmarks (and their subsets, indented) × models: the headline with its 95 % interval, then one
    line per absent benchmark."""
    models = list(results)
    first = results[models[0]]
    lines = ["| benchmark | number | " + " | ".join(models) + " |", "|---|---|" + "---|" * len(models)]
    for key, rows in first.items():
        for index, row in enumerate(rows):
            cells = [results[m][key][index] for m in models]
            values = [_number(c["value"], c["ci_low"], c["ci_high"]) for c in cells]
            lines.append(f"| {row['label']} | {row['headline']} | " + " | ".join(values) + " |")
            for subset in row["subsets"]:
                lines.append(
                    f"| · {subset} | | " + " | ".join(_number(c["subsets"][subset]) for c in cells) + " |"
                )
    for title, patterns in absent.items():
        lines.append(f"| {title} | absent (looked for {patterns[0]}) |" + " |" * len(models))
    return "\n".join(lines)
