"""Gold labelling: score every response of a multi-response file with a gold SPEC and build labelled pairs.

``label_file`` writes three files beside each other (docs/evaluation.md):
    OUT.jsonl        the input records, every completion with its ``gold_score`` (and its model name);
    OUT.pairs.jsonl  preference pairs in TRL layout built from the gold scores as training builds them
                     (``data.formats.select_pairs``), their labels corrupted by one condition
                     (:func:`corrupt_labels`): exactly round(noise·pairs) of them flipped (uniform label
                     noise), or, in exactly round(p·m) of the m pairs whose responses differ in length, the
                     longer response labelled better whatever the gold (a length bias declared in advance);
    OUT.meta.json    how they were made: gold spec, pair strategy, noise, seed, counts.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rmguard.data.formats import PAIR_STRATEGIES, select_pairs
from rmguard.data.response_sets import Completion, ResponseSet, read_response_sets
from rmguard.errors import ConfigError
from rmguard.fileio import atomic_write_json, atomic_write_jsonl, check_outputs
from rmguard.gold import GoldScorer


def companion_path(output: str | Path, kind: str) -> Path:
    """OUT.jsonl → OUT.<kind>.jsonl for 'pairs', OUT.meta.json for 'meta'."""
    path = Path(output)
    stem = path.name[: -len(path.suffix)] if path.suffix else path.name
    return path.with_name(
        f"{stem}.meta.json" if kind == "meta" else f"{stem}.{kind}{path.suffix or '.jsonl'}"
    )


def flip_count(pairs: int, fraction: float) -> int:
    """round(fraction · pairs), halves rounded up: the exact number of labels that noise flips."""
    return math.floor(fraction * pairs + 0.5)


def flip_indices(pairs: int, fraction: float, seed: int) -> list[int]:
    """Exactly ``flip_count(pairs, fraction)`` distinct indices, drawn without replacement under ``seed``."""
    if not 0.0 <= fraction <= 1.0:
        raise ConfigError(f"label noise must be a fraction in [0, 1], got {fraction}")
    return sorted(random.Random(f"label-noise:{seed}").sample(range(pairs), flip_count(pairs, fraction)))


def length_biased_indices(lengths: Sequence[tuple[int, int]], share: float, seed: int) -> list[int]:
    """Which pairs length decides: exactly ``flip_count(m, share)`` of the m pairs whose two responses differ
    in length (``lengths``: (chosen, rejected) per pair), drawn without replacement under ``seed``.

    The length-biased condition's draw: each such pair is decided by length with probability ``share``, as
    uniform noise flips each pair with probability ``noise`` (both exact counts, so seeds differ only in
    which pairs)."""
    if not 0.0 <= share <= 1.0:
        raise ConfigError(f"length bias must be a fraction in [0, 1], got {share}")
    eligible = [k for k, (a, b) in enumerate(lengths) if a != b]
    drawn = random.Random(f"length-bias:{seed}").sample(
        range(len(eligible)), flip_count(len(eligible), share)
    )
    return sorted(eligible[i] for i in drawn)


def length_bias_labels(rows: list[dict[str, Any]], share: float, seed: int) -> int:
    """In the pairs :func:`length_biased_indices` draws, the longer response (characters of its text,
    ``calibration.response_length``) becomes chosen whatever the gold (in place); returns how many rows
    that swapped, i.e. how many labels now disagree with the gold (a drawn pair whose gold already
    prefers the longer response keeps its label). Swapped rows are marked ``label_flipped``."""
    from rmguard.calibration import response_length

    lengths = [(response_length(r["chosen"]), response_length(r["rejected"])) for r in rows]
    swapped = [k for k in length_biased_indices(lengths, share, seed) if lengths[k][0] < lengths[k][1]]
    for index in swapped:
        swap_pair(rows[index])
    return len(swapped)


def corrupt_labels(rows: list[dict[str, Any]], label_noise: float, length_bias: float, seed: int) -> int:
    """The training labels of one condition, from gold-ordered ``rows`` (in place): uniform label noise
    (:func:`flip_labels`) or a length bias (:func:`length_bias_labels`), never both; returns how many labels
    now disagree with the gold."""
    if label_noise and length_bias:
        raise ConfigError(
            "label_noise and length_bias are two conditions: set one of them (the other labels follow the gold)"
        )
    if length_bias:
        return length_bias_labels(rows, length_bias, seed)
    return flip_labels(rows, label_noise, seed)


def pair_row(item: ResponseSet, chosen: int, rejected: int) -> dict[str, Any]:
    """A TRL conversational pair that keeps the id, both model names and both gold scores."""
    c, r = item.completions[chosen], item.completions[rejected]
    return {
        "id": item.id,
        "prompt": item.chat_prompt,
        "chosen": item.chat_response(chosen),
        "rejected": item.chat_response(rejected),
        "chosen_model": c.model,
        "rejected_model": r.model,
        "chosen_gold": c.gold,
        "rejected_gold": r.gold,
        "label_flipped": False,
    }


@dataclass
class GoldPairs:
    """Pair rows of some records, how many records gave none, and the ids of those that gave some."""

    rows: list[dict[str, Any]]
    unpaired: int
    paired_ids: set[str]


def build_pairs(items: Sequence[ResponseSet], strategy: str, rng: random.Random) -> GoldPairs:
    """Pairs of every record by gold score as training builds them (``select_pairs``: ties never
    paired, a record with fewer than two distinct scores gives none); ``best_vs_random`` draws from ``rng``."""
    PAIR_STRATEGIES.lookup(strategy)
    pairs = GoldPairs([], 0, set())
    for item in items:
        chosen_rejected = select_pairs(item.golds, strategy, rng)
        if chosen_rejected:
            pairs.paired_ids.add(item.id)
        else:
            pairs.unpaired += 1
        pairs.rows.extend(pair_row(item, c, r) for c, r in chosen_rejected)
    return pairs


def flip_labels(rows: list[dict[str, Any]], fraction: float, seed: int) -> int:
    """Swap chosen and rejected in exactly round(fraction·len(rows)) rows (in place); returns how many.

    Models and gold scores travel with their responses, so a flipped row shows chosen_gold < rejected_gold.
    """
    flipped = flip_indices(len(rows), fraction, seed)
    for index in flipped:
        swap_pair(rows[index])
    return len(flipped)


def swap_pair(row: dict[str, Any]) -> None:
    """Chosen and rejected swapped with their models and gold scores; the row marked ``label_flipped``."""
    for a, b in (
        ("chosen", "rejected"),
        ("chosen_model", "rejected_model"),
        ("chosen_gold", "rejected_gold"),
    ):
        row[a], row[b] = row[b], row[a]
    row["label_flipped"] = True


def gold_label(items: Sequence[ResponseSet], gold: GoldScorer) -> list[ResponseSet]:
    """Records with every completion's gold score set (one batched call over all responses).

    The gold sees what a reward model trained on these records sees: the prompt as a user turn and the
    response as an assistant turn (chat messages).
    """
    prompts = [item.chat_prompt for item in items for _ in item.completions]
    responses = [item.chat_response(i) for item in items for i in range(len(item.completions))]
    scores = iter(gold.score(prompts, responses))
    return [
        item.with_completions(
            [Completion(c.model, c.response, next(scores), c.fields) for c in item.completions]
        )
        for item in items
    ]


def label_file(
    data: str,
    gold: str | GoldScorer,
    output: str | Path,
    pairs: str = "best_vs_worst",
    label_noise: float = 0.0,
    seed: int = 0,
    batch_size: int = 16,
    length_bias: float = 0.0,
) -> dict[str, Any]:
    """Gold-score ``data`` with the SPEC (or scorer) ``gold`` and write OUT.jsonl, OUT.pairs.jsonl, OUT.meta.json; returns the metadata."""
    corrupt_labels([], label_noise, length_bias, seed)  # validates the condition before the gold pass
    check_outputs([output, *(companion_path(output, kind) for kind in ("pairs", "meta"))], [data])
    PAIR_STRATEGIES.lookup(pairs)
    pairs = PAIR_STRATEGIES.canonical(pairs)
    items = read_response_sets(data)
    scorer = gold if isinstance(gold, GoldScorer) else GoldScorer(gold, batch_size=batch_size)
    labelled = gold_label(items, scorer)
    built = build_pairs(labelled, pairs, random.Random(seed))
    rows, unpaired = built.rows, built.unpaired
    flipped = corrupt_labels(rows, label_noise, length_bias, seed)
    models: dict[str, int] = {}
    for item in labelled:
        for c in item.completions:
            models[c.model or ""] = models.get(c.model or "", 0) + 1
    meta = {
        "source": str(data),
        "gold": scorer.spec,
        "pair_strategy": pairs,
        "label_noise": label_noise,
        "length_bias": length_bias,
        "seed": seed,
        "records": len(labelled),
        "responses": sum(models.values()),
        "pairs": len(rows),
        "flipped": flipped,
        "flipped_fraction": flipped / len(rows) if rows else 0.0,
        "records_without_pair": unpaired,
        "responses_per_model": dict(sorted(models.items())),
        "files": {
            "records": str(output),
            "pairs": str(companion_path(output, "pairs")),
            "meta": str(companion_path(output, "meta")),
        },
    }
    atomic_write_jsonl(output, [item.to_row() for item in labelled])
    atomic_write_jsonl(companion_path(output, "pairs"), rows)
    atomic_write_json(companion_path(output, "meta"), meta)
    return meta


def read_label_metadata(labelled: str | Path) -> dict[str, Any] | None:
    """The OUT.meta.json written beside a labelled file, or None when there is none."""
    path = companion_path(labelled, "meta")
    return json.loads(path.read_text()) if path.is_file() else None
