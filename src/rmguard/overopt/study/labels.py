"""The study's label conditions: how a world's training labels depart from the gold.

The main cell's condition is uniform label noise (``label_noise``: each training pair flipped with that
probability); beside it, a length bias declared in the config before any run (``length_bias``: each pair
whose responses differ in length decided by length with that probability, by the gold otherwise), and the
sweep's further noise levels (``label_noises``). The rule itself lives in ``eval.labeling.corrupt_labels``;
here each condition gets its labelled file and its worlds (one per seed, the same splits in every
condition), and its share of training labels that end up against the gold.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class LabelCondition:
    """How a world's training labels depart from the gold (``eval.labeling.corrupt_labels``): uniform noise
    (each pair flipped with probability ``noise``) or a length bias (each pair whose responses differ in
    length decided by length, the longer one better, with probability ``length_bias``, by the gold
    otherwise). Worlds of two conditions share their seeds and splits; only the training labels differ."""

    noise: float = 0.0
    length_bias: float = 0.0

    @property
    def name(self) -> str:
        """Its name in report.json's ``headline.conditions``."""
        return (
            f"length-biased p={self.length_bias:g}" if self.length_bias else f"uniform noise {self.noise:g}"
        )

    @property
    def key(self) -> str:
        """Its key in report.json's ``worlds`` and the sweep's cells (``noise 0.25`` for uniform noise)."""
        return self.name if self.length_bias else f"noise {self.noise:g}"

    @property
    def tag(self) -> str:
        """Its folders' and files' name."""
        return f"length{self.length_bias:g}" if self.length_bias else f"noise{self.noise:g}"


def label_conditions(config: Any) -> list[LabelCondition]:
    """The label conditions: uniform noise at label_noise (the main cell's), the length bias, more noise
    levels."""
    bias = [LabelCondition(length_bias=config.length_bias)] if config.length_bias else []
    more = [LabelCondition(n) for n in dict.fromkeys(config.label_noises or []) if n != config.label_noise]
    return [LabelCondition(config.label_noise), *bias, *more]


def world_splits(
    config: Any, records_file: Path, gold: Any, bon: Any, out: Path
) -> dict[LabelCondition, dict[int, Path]]:
    """condition → seed → the world's splits folder: labels under each condition, then one make_splits per
    seed (held-out styles, training responses, pairs and the condition's draw all from the seed)."""
    from rmguard.eval.labeling import label_file
    from rmguard.eval.splits import make_splits

    folders: dict[LabelCondition, dict[int, Path]] = {}
    for condition in label_conditions(config):
        labelled = out / "data" / f"labelled-{condition.tag}.jsonl"
        label_file(
            str(records_file),
            gold,
            labelled,
            config.pair_strategy,
            condition.noise,
            config.seed,
            length_bias=condition.length_bias,
        )
        folders[condition] = {}
        for seed in config.seeds:
            folder = out / "worlds" / condition.tag / f"seed{seed}"
            make_splits(str(labelled), folder, bon.ids, config.heldout_styles, seed, config.train_responses)
            folders[condition][seed] = folder
    return folders


def by_condition(
    config: Any, cells: dict[str, Any], splits: dict[LabelCondition, dict[int, Path]]
) -> dict[str, Any]:
    """condition name → its main-cell analysis (uniform noise at label_noise, then the length bias), each
    with the share of its training labels that disagree with the gold (mean over seeds, from the worlds'
    manifests)."""
    main = LabelCondition(config.label_noise)
    analysed = {main: cells["main"], **{c: cells["conditions"][c.name] for c in splits if c.length_bias}}
    for condition, summary in analysed.items():
        counts = [
            json.loads((f / "manifest.json").read_text())["counts"]["train"]
            for f in splits[condition].values()
        ]
        summary["wrong_label_share"] = float(np.mean([c["flipped"] / c["pairs"] for c in counts]))
    return {condition.name: summary for condition, summary in analysed.items()}
