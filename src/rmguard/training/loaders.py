"""Data files → tokenized pairs → the training and evaluation loaders of a run."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.utils.data import DataLoader

from rmguard.data import load_pairs
from rmguard.data.augmentation import augment
from rmguard.errors import ConfigError
from rmguard.training.batching import EpochShuffleSampler, TokenBudgetBatchSampler
from rmguard.training.config import TrainConfig
from rmguard.training.packing import PackedPairCollator, make_pair_collator, pair_tokens
from rmguard.training.tokenization import PairFeatures, TokenizationReport, tokenize_pairs


def load_features(
    config: TrainConfig,
    spec: str,
    split: str,
    tokenizer: Any,
    log: Callable[[str], None],
    augmentation: str = "none",
) -> tuple[list[PairFeatures], TokenizationReport]:
    """The pairs of a data file (``spec``), augmented (``pair_augmentation``: training pairs only) and
    tokenized; what was dropped, made or cut is logged."""
    pairs, stats = load_pairs(spec, config.data_format, config.pair_strategy, split, config.seed)
    for reason, count in stats.dropped.items():
        log(f"{spec}: {count} of {stats.rows} rows give no pair ({reason})")
    if augmentation != "none":
        pairs, made = augment(pairs, augmentation, config.seed)
        log(
            f"{spec}: pair_augmentation {augmentation}: "
            + ", ".join(f"{n} {kind}" for kind, n in made.items())
        )
    features, report = tokenize_pairs(pairs, tokenizer, config.max_length, config.truncation)
    log(f"{spec}: {report.summary()}")
    if report.dropped_rows:
        shown = ", ".join(str(row) for _, row in report.dropped_rows[:10])
        log(f"{spec}: dropped rows {shown}{' …' if len(report.dropped_rows) > 10 else ''}")
    if not features:
        raise ConfigError(f"{spec}: no pair fits max_length={config.max_length}")
    return features, report


def train_loader(
    config: TrainConfig, features: list[PairFeatures], collator: Callable
) -> tuple[DataLoader, TokenBudgetBatchSampler | None]:
    """Fixed-size batches in a fresh order each epoch, or token-budget batches (and their sampler)."""
    if not config.max_tokens_per_batch:
        loader = DataLoader(
            features,
            batch_size=config.per_device_train_batch_size,
            sampler=EpochShuffleSampler(len(features), config.seed),
            collate_fn=collator,
            generator=torch.Generator().manual_seed(config.seed),
        )
        return loader, None
    packed = isinstance(collator, PackedPairCollator)
    sampler = TokenBudgetBatchSampler(
        [pair_tokens(f, packed) for f in features],
        config.max_tokens_per_batch,
        config.seed,
        max_items=config.per_device_train_batch_size,
    )
    return DataLoader(features, batch_sampler=sampler, collate_fn=collator), sampler


def eval_loader(config: TrainConfig, packed: bool, tokenizer: Any, log: Callable) -> DataLoader | None:
    """The held-out pairs of ``eval_file`` (None without one), in file order."""
    if not config.eval_file:
        return None
    features, _ = load_features(config, config.eval_file, config.eval_split, tokenizer, log)
    if not features:
        return None
    return DataLoader(
        features,
        batch_size=config.per_device_eval_batch_size,
        collate_fn=make_pair_collator(packed, tokenizer.pad_token_id),
    )
