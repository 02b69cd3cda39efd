"""The four distribution-shift scenarios of Hong et al. (2025) from a gold-labelled multi-response file.

Prompts are split into train and held-out prompts (by prompt text, so a repeated prompt never straddles),
models into training and held-out models. Then, as Hong et al. lay out their four scenarios:

    train.jsonl                  train prompts, ``train_responses`` responses of training models → gold pairs
    val1_in_domain.jsonl         train prompts, the other training-model responses → gold pairs (accuracy)
    val2_prompt_disjoint.jsonl   held-out prompts, training-model responses (Kendall τ)
    val3_response_disjoint.jsonl train prompts, held-out-model responses (Kendall τ)
    val4_mutual_disjoint.jsonl   held-out prompts, held-out-model responses (Kendall τ)
    manifest.json                models, counts, the disjointness checks, seeds and label settings

Pairs are built as ``rmguard label`` builds them (its pair strategy and label noise are read from the
labelled file's OUT.meta.json when present); its label condition (uniform noise or a length bias,
``labeling.corrupt_labels``) acts on training pairs only, validation pairs stay gold.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rmguard.data.response_sets import ResponseSet, prompt_id, read_response_sets
from rmguard.errors import ConfigError, DataError
from rmguard.eval.labeling import build_pairs, corrupt_labels, read_label_metadata
from rmguard.fileio import atomic_directory

SCENARIOS = ("val1_in_domain", "val2_prompt_disjoint", "val3_response_disjoint", "val4_mutual_disjoint")
SHIFTED_SCENARIOS = SCENARIOS[1:]  # scored by Kendall τ per prompt
SPLITS = ("train", *SCENARIOS)
PAIR_SPLITS = ("train", "val1_in_domain")
IN_DOMAIN_PROMPT_SPLITS = ("val1_in_domain", "val3_response_disjoint")  # training prompts only
MANIFEST = "manifest.json"
logger = logging.getLogger(__name__)


def choose_heldout_models(
    models: Sequence[str], heldout: int | Sequence[str], rng: random.Random
) -> list[str]:
    """A count (drawn from the sorted model names under ``rng``) or explicit names; at least two models must stay."""
    names = sorted(models)
    if isinstance(heldout, int):
        if not 1 <= heldout <= len(names) - 2:
            raise ConfigError(
                f"--heldout-models {heldout}: the data has {len(names)} models; hold out between 1 and "
                f"{len(names) - 2} so that two training models remain"
            )
        return sorted(rng.sample(names, heldout))
    unknown = sorted(set(heldout) - set(names))
    if unknown:
        raise ConfigError(
            f"held-out model(s) {', '.join(unknown)} do not occur in the data; it has {', '.join(names)}"
        )
    if len(names) - len(set(heldout)) < 2:
        raise ConfigError("at least two training models must remain after holding models out")
    return sorted(set(heldout))


def choose_heldout_prompts(
    items: Sequence[ResponseSet], fraction: float | Sequence[str], rng: random.Random
) -> set[str]:
    """Ids of round(fraction · distinct prompts) held-out prompts, or the given record ids; records with the
    same prompt text stay together."""
    if not isinstance(fraction, (int, float)):
        known = {item.id for item in items}
        unknown = sorted(set(fraction) - known)
        if unknown or not 0 < len(set(fraction)) < len(known):
            raise ConfigError(
                f"held-out prompt ids must be some, not all, of the data's ids; unknown: {unknown[:3]}"
            )
        held = {prompt_id(item.prompt) for item in items if item.id in set(fraction)}
        return {item.id for item in items if prompt_id(item.prompt) in held}
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"--heldout-prompts must be a fraction in (0, 1), got {fraction}")
    groups: dict[str, list[str]] = {}
    for item in items:
        groups.setdefault(prompt_id(item.prompt), []).append(item.id)
    keys = sorted(groups)
    count = round(fraction * len(keys))
    if not 1 <= count < len(keys):
        raise ConfigError(
            f"--heldout-prompts {fraction} of {len(keys)} prompts holds out {count}; "
            "at least one prompt must be held out and one kept"
        )
    return {identifier for key in rng.sample(keys, count) for identifier in groups[key]}


def _disjointness(
    parts: dict[str, list[ResponseSet]], heldout_ids: set[str], heldout_models: set[str]
) -> dict[str, Any]:
    """Checks that must hold by construction, recomputed from the written records."""

    def ids(name: str) -> set[str]:
        return {item.id for item in parts[name]}

    def prompts(name: str) -> set[str]:
        return {prompt_id(item.prompt) for item in parts[name]}

    def models(name: str) -> set[str]:
        return {c.model for item in parts[name] for c in item.completions}

    def responses(name: str) -> set[tuple[str, str]]:
        return {(item.id, c.model) for item in parts[name] for c in item.completions}

    def texts(name: str) -> set[str]:
        return {json.dumps(c.response, sort_keys=True) for item in parts[name] for c in item.completions}

    train_side = ("train", "val1_in_domain", "val3_response_disjoint")
    heldout_side = ("val2_prompt_disjoint", "val4_mutual_disjoint")
    seen_side = ("train", "val1_in_domain", "val2_prompt_disjoint")
    new_side = ("val3_response_disjoint", "val4_mutual_disjoint")
    train_prompts = set().union(*(prompts(n) for n in train_side))
    heldout_prompts = set().union(*(prompts(n) for n in heldout_side))
    seen_models = set().union(*(models(n) for n in seen_side))
    new_models = set().union(*(models(n) for n in new_side))
    checks = {
        "prompts_disjoint": not (train_prompts & heldout_prompts)
        and not (set().union(*(ids(n) for n in train_side)) & heldout_ids),
        "models_disjoint": not (seen_models & new_models) and new_models <= heldout_models,
        "train_val1_responses_disjoint": not (responses("train") & responses("val1_in_domain")),
    }
    # Different models can write the same text ("I don't know."): reported, not an error.
    checks["train_response_texts_in_other_splits"] = {
        name: len(texts("train") & texts(name)) for name in SPLITS if name != "train"
    }
    return checks


FEW_PAIRS_SHARE = 0.5  # below this many in-domain pairs per training prompt a split says so


def make_splits(
    data: str,
    output_dir: str | Path,
    heldout_prompts: float | Sequence[str] = 0.2,
    heldout_models: int | Sequence[str] = 4,
    seed: int = 0,
    train_responses: int = 2,
) -> dict[str, Any]:
    """Write the five scenario files and manifest.json into ``output_dir`` (atomically); returns the manifest."""
    if train_responses < 2:
        raise ConfigError(f"train_responses must be at least 2 (a pair), got {train_responses}")
    items = read_response_sets(data, require_gold=True, require_models=True)
    label_meta = read_label_metadata(data) or {}
    strategy = label_meta.get("pair_strategy", "best_vs_worst")
    noise = float(label_meta.get("label_noise", 0.0))
    length_bias = float(label_meta.get("length_bias", 0.0))
    rng = random.Random(seed)
    all_models = {c.model for item in items for c in item.completions}
    held_models = set(choose_heldout_models(all_models, heldout_models, rng))
    held_prompts = choose_heldout_prompts(items, heldout_prompts, rng)
    parts = _partition(items, held_models, held_prompts, train_responses, rng)
    checks = _disjointness(parts, held_prompts, held_models)
    if not all(
        checks[key] for key in ("prompts_disjoint", "models_disjoint", "train_val1_responses_disjoint")
    ):
        raise DataError(data, f"splits are not disjoint: {checks}")  # a bug, or ids that contradict prompts
    outputs, counts = _scenario_rows(parts, strategy, random.Random(f"pairs:{seed}"))
    counts["train"]["flipped"] = corrupt_labels(outputs["train"], noise, length_bias, seed)
    _refuse_empty(data, outputs, counts)
    train_prompts = len(items) - len(held_prompts)
    _warn_few_in_domain_pairs(counts["val1_in_domain"]["pairs"], train_prompts)
    manifest = {
        "source": str(data),
        "seed": seed,
        "heldout_prompts_fraction": heldout_prompts,
        "train_models": sorted(all_models - held_models),
        "heldout_models": sorted(held_models),
        "prompts": {"train": train_prompts, "heldout": len(held_prompts)},
        "train_responses_per_prompt": train_responses,
        "pair_strategy": strategy,
        "label_noise": noise,
        "length_bias": length_bias,
        "label_metadata": label_meta or None,
        "counts": counts,
        "disjointness": checks,
        "files": {name: f"{name}.jsonl" for name in SPLITS},
    }
    _write(output_dir, outputs, manifest)
    return manifest


def _partition(
    items: list[ResponseSet],
    held_models: set[str],
    held_prompts: set[str],
    train_responses: int,
    rng: random.Random,
) -> dict[str, list[ResponseSet]]:
    """Each prompt's responses into the scenarios: held-out prompts give val2 (training models) and val4
    (held-out models); a training prompt gives ``train_responses`` training-model responses to train, the
    other training-model responses to val1 and the held-out models' to val3."""
    parts: dict[str, list[ResponseSet]] = {name: [] for name in SPLITS}
    for item in items:
        seen = [c for c in item.completions if c.model not in held_models]
        new = [c for c in item.completions if c.model in held_models]
        if item.id in held_prompts:
            parts["val2_prompt_disjoint"].append(item.with_completions(seen))
            parts["val4_mutual_disjoint"].append(item.with_completions(new))
            continue
        shuffled = rng.sample(seen, len(seen))
        parts["train"].append(item.with_completions(shuffled[:train_responses]))
        parts["val1_in_domain"].append(item.with_completions(shuffled[train_responses:]))
        parts["val3_response_disjoint"].append(item.with_completions(new))
    return parts


def _scenario_rows(
    parts: dict[str, list[ResponseSet]], strategy: str, pair_rng: random.Random
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, dict[str, int]]]:
    """(rows, counts) per split: gold pairs for train and val1, response sets of 2 or more elsewhere."""
    train_pairs = build_pairs(parts["train"], strategy, pair_rng)
    # In-domain means a prompt the model was trained on: one whose training responses all tie gave no pair.
    left_out = {}
    for name in IN_DOMAIN_PROMPT_SPLITS:
        kept_items = [item for item in parts[name] if item.id in train_pairs.paired_ids]
        left_out[name] = len(parts[name]) - len(kept_items)
        parts[name] = kept_items
    outputs: dict[str, list[dict[str, Any]]] = {}
    counts: dict[str, dict[str, Any]] = {}
    for name in SPLITS:
        if name in PAIR_SPLITS:
            pairs = train_pairs if name == "train" else build_pairs(parts[name], strategy, pair_rng)
            outputs[name] = pairs.rows
            counts[name] = {"pairs": len(pairs.rows), "prompts_without_pair": pairs.unpaired}
        else:
            kept = [item for item in parts[name] if len(item.completions) >= 2]
            outputs[name] = [item.to_row() for item in kept]
            counts[name] = {
                "prompts": len(kept),
                "responses": sum(len(i.completions) for i in kept),
                "prompts_with_fewer_than_2_responses": len(parts[name]) - len(kept),
            }
        if name in left_out:
            counts[name]["prompts_without_training_pair_left_out"] = left_out[name]
    return outputs, counts


def _refuse_empty(data: str, outputs: dict[str, list[dict[str, Any]]], counts: dict[str, dict]) -> None:
    for name, rows in outputs.items():
        if not rows:
            raise DataError(
                data,
                f"split {name} would be empty (counts: {counts[name]}); use more prompts or models, "
                "or change --heldout-prompts / --heldout-models",
            )


def _warn_few_in_domain_pairs(pairs: int, train_prompts: int) -> None:
    """One warning line when val1 holds far fewer pairs than there are training prompts (ties, few
    responses): its accuracy then rests on a handful of pairs."""
    if pairs < FEW_PAIRS_SHARE * train_prompts:
        logger.warning(
            "split: only %d in-domain pairs for %d training prompts (gold ties or too few responses leave "
            "the rest without a pair); val1 accuracy rests on them",
            pairs,
            train_prompts,
        )


def _write(output_dir: str | Path, outputs: dict[str, list[dict[str, Any]]], manifest: dict) -> None:
    with atomic_directory(output_dir) as scratch:
        for name, rows in outputs.items():
            (scratch / f"{name}.jsonl").write_text(
                "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
            )
        (scratch / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
