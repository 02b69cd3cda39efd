"""Tokenized features → model batches.

A batch says, independently of layout, where to read what:
    input_ids, attention_mask, position_ids   what the backbone runs on
    reward_index  [S, 2]   (row, column) of the token whose final hidden state gives each sequence's reward
    logp_index    [N, 2]   (row, column) of the hidden states that predict response tokens (GRM only)
    logp_target   [N]      the response tokens they predict
    logp_seq      [N]      which sequence each predicted token belongs to
Sequences 0..B−1 are the chosen responses and B..2B−1 the rejected ones. The padded collator here is
the plain reference path; a packed collator can fill the same fields with rows holding several
sequences and nothing else changes.
"""

from __future__ import annotations

import math
from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass

import torch

from rmguard.training.features import PairFeatures, ResponseFeatures

PairKey = tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]
# GRM-DPO's reference: pair tokens → summed log-probs (S_ref(y_c), S_ref(y_r)) of the starting model.
ReferenceLogps = Mapping[PairKey, tuple[float, float]]

MODEL_INPUT_KEYS = (
    "input_ids",
    "attention_mask",
    "position_ids",
    "reward_index",
    "logp_index",
    "logp_target",
    "logp_seq",
)


def pad_sequences(
    sequences: Sequence[Sequence[int]],
    prompt_lengths: Sequence[int],
    pad_token_id: int,
    padding_side: str = "right",
    with_logps: bool = False,
    logp_sequences: Container[int] | None = None,
) -> dict[str, torch.Tensor]:
    """One padded row per sequence; rewards at each row's last real token.

    Response log-probs cover the tokens after ``prompt_lengths[s]``; each is predicted by the hidden state
    one position earlier, so a sequence's very first token (empty prompt) has no log-prob. Only the rows in
    ``logp_sequences`` get log-probs when it is given (the others' stay 0).
    """
    width = max(len(seq) for seq in sequences)
    rows = len(sequences)
    input_ids = torch.full((rows, width), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((rows, width), dtype=torch.long)
    position_ids = torch.zeros((rows, width), dtype=torch.long)
    reward_index = torch.empty((rows, 2), dtype=torch.long)
    logp_rows, logp_cols, logp_seq, logp_target = [], [], [], []
    for row, seq in enumerate(sequences):
        start = 0 if padding_side == "right" else width - len(seq)
        end = start + len(seq)
        input_ids[row, start:end] = torch.tensor(seq, dtype=torch.long)
        attention_mask[row, start:end] = 1
        position_ids[row, start:end] = torch.arange(len(seq))
        reward_index[row] = torch.tensor([row, end - 1])
        if with_logps and (logp_sequences is None or row in logp_sequences):
            first = max(prompt_lengths[row], 1)
            logp_rows += [row] * (len(seq) - first)
            logp_cols += range(start + first - 1, end - 1)
            logp_seq += [row] * (len(seq) - first)
            logp_target += seq[first:]
    batch = {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "position_ids": position_ids,
        "reward_index": reward_index,
    }
    if with_logps:
        batch["logp_index"] = torch.tensor([logp_rows, logp_cols], dtype=torch.long).T.reshape(-1, 2)
        batch["logp_target"] = torch.tensor(logp_target, dtype=torch.long)
        batch["logp_seq"] = torch.tensor(logp_seq, dtype=torch.long)
    return batch


@dataclass
class ResponseCollator:
    """Pads single responses for scoring (one row each)."""

    pad_token_id: int
    padding_side: str = "right"
    with_logps: bool = False

    def __call__(
        self, features: list[ResponseFeatures], logp_rows: Container[int] | None = None
    ) -> dict[str, torch.Tensor]:
        """``logp_rows``: only these rows get log-probs (all rows when None)."""
        return pad_sequences(
            [f.prompt_ids + f.response_ids for f in features],
            [len(f.prompt_ids) for f in features],
            self.pad_token_id,
            self.padding_side,
            self.with_logps,
            logp_rows,
        )


@dataclass
class PaddedPairCollator:
    """Pads the 2B sequences of B pairs into one [2B, T] batch (chosen rows first)."""

    pad_token_id: int
    padding_side: str = "right"
    with_logps: bool = False
    chosen_logps_only: bool = False  # GRM's SFT regularizers read the chosen responses' log-probs only
    reference: ReferenceLogps | None = None  # GRM-DPO's precomputed reference log-probs
    with_lengths: bool = False  # ODIN reads the responses' token counts

    def __call__(self, features: list[PairFeatures]) -> dict[str, torch.Tensor]:
        responses = [ResponseFeatures(f.prompt_ids, f.chosen_ids) for f in features] + [
            ResponseFeatures(f.prompt_ids, f.rejected_ids) for f in features
        ]
        chosen_rows = range(len(features)) if self.chosen_logps_only else None
        batch = ResponseCollator(self.pad_token_id, self.padding_side, self.with_logps)(
            responses, chosen_rows
        )
        return {**batch, **pair_targets(features, self.reference, self.with_lengths)}


def pair_key(feature: PairFeatures) -> PairKey:
    """A pair by its tokens: equal pairs get equal reference log-probs, whatever their position."""
    return tuple(feature.prompt_ids), tuple(feature.chosen_ids), tuple(feature.rejected_ids)


def pair_targets(
    features: list[PairFeatures], reference: ReferenceLogps | None = None, with_lengths: bool = False
) -> dict[str, torch.Tensor]:
    """Per-pair loss inputs that do not go through the model: margins, reference log-probs and, with
    ``with_lengths``, the responses' lengths in tokens (``chosen_length``, ``rejected_length``: ODIN's ℓ).

    ``margin`` is there when any pair has one, NaN for a pair without: the loss gives those the
    configured margin (:func:`rmguard.training.loss.pair_margins`, the one home of that rule). ``tie``
    is there when any pair is a tie (true for those)."""
    targets: dict[str, torch.Tensor] = {}
    if with_lengths:
        for side in ("chosen", "rejected"):
            lengths = [len(getattr(f, f"{side}_ids")) for f in features]
            targets[f"{side}_length"] = torch.tensor(lengths, dtype=torch.float32)
    if any(f.margin is not None for f in features):
        targets["margin"] = torch.tensor(
            [math.nan if f.margin is None else f.margin for f in features], dtype=torch.float32
        )
    if any(f.tie for f in features):
        targets["tie"] = torch.tensor([f.tie for f in features], dtype=torch.bool)
    if reference is not None:
        chosen, rejected = zip(*(reference[pair_key(f)] for f in features))
        targets["ref_chosen_logps"] = torch.tensor(chosen, dtype=torch.float32)
        targets["ref_rejected_logps"] = torch.tensor(rejected, dtype=torch.float32)
    return targets
