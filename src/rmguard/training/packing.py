"""Prefix-shared, padding-free packing: all prompts with their responses in one row, each prompt once.

A *segment* is one prompt followed by its k responses, ``[prompt | response_1 | … | response_k]`` (k = 2
for a training pair: chosen then rejected). Inside a segment each response attends to the prompt and to
its own earlier tokens only, and its positions continue from the prompt's end, so every response sees
exactly what it would see as ``prompt + response`` alone. A batch's segments lie end to end in a single
row [1, T] with no padding, so the linear layers run on the real tokens and nothing else.

The batch keeps the layout-independent contract of :mod:`rmguard.training.collate`, with ``attention_mask`` a
:class:`rmguard.training.attention.PackedAttention` (who attends to whom) in place of a tensor.
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from rmguard.training.attention import AttentionBlock, PackedAttention
from rmguard.training.collate import PaddedPairCollator, ReferenceLogps, pair_targets
from rmguard.training.run import REWARDS_ONLY, BatchNeeds
from rmguard.training.tokenization import PairFeatures, ResponseFeatures


@dataclass
class Segment:
    """One prompt with its responses; ``sequence_ids[k]`` is the output slot of ``responses[k]``."""

    prompt: Sequence[int]
    responses: Sequence[Sequence[int]]
    sequence_ids: Sequence[int]

    def __len__(self) -> int:
        return len(self.prompt) + sum(len(r) for r in self.responses)


def pack_segments(
    segments: Sequence[Segment], with_logps: bool = False, logp_sequences: Container[int] | None = None
) -> dict[str, Any]:
    """Lay ``segments`` end to end in one row.

    Attention blocks: the prompt with its first response is one plain causal block; each later response
    is a block whose keys are the prompt and itself. Response log-probs: token j of a response is
    predicted by the hidden state of token j − 1 of that response, and its first token by the prompt's
    last token (none when the prompt is empty), exactly as in :func:`rmguard.training.collate.pad_sequences`;
    only for the sequences in ``logp_sequences`` when given (the others' log-probs stay 0).
    """
    num_sequences = sum(len(s.responses) for s in segments)
    tokens: list[int] = []
    positions: list[int] = []
    blocks: list[AttentionBlock] = []
    reward_index = torch.zeros((num_sequences, 2), dtype=torch.long)
    logp_cols: list[int] = []
    logp_seq: list[int] = []
    logp_target: list[int] = []
    for segment in segments:
        prompt_start, prompt_len = len(tokens), len(segment.prompt)
        tokens += segment.prompt
        positions += range(prompt_len)
        prompt_span = ((prompt_start, prompt_start + prompt_len),) if prompt_len else ()
        for k, (response, seq) in enumerate(zip(segment.responses, segment.sequence_ids), start=1):
            start, end = len(tokens), len(tokens) + len(response)
            tokens += response
            positions += range(prompt_len, prompt_len + len(response))
            if k == 1:
                blocks.append(AttentionBlock((prompt_start, end), ((prompt_start, end),)))
            else:
                blocks.append(AttentionBlock((start, end), (*prompt_span, (start, end))))
            reward_index[seq, 1] = end - 1
            if with_logps and (logp_sequences is None or seq in logp_sequences):
                predictors = [prompt_start + prompt_len - 1] if prompt_len else []
                predictors += range(start, end - 1)
                logp_cols += predictors
                logp_seq += [seq] * len(predictors)
                logp_target += response[len(response) - len(predictors) :]
    position_ids = torch.tensor(positions, dtype=torch.long)
    layout = PackedAttention(blocks, position_ids)
    batch: dict[str, Any] = {
        "input_ids": torch.tensor([tokens], dtype=torch.long),
        "attention_mask": layout,
        "position_ids": position_ids[None],
        "reward_index": reward_index,
    }
    if with_logps:
        batch["logp_index"] = torch.tensor([[0, col] for col in logp_cols], dtype=torch.long).reshape(-1, 2)
        batch["logp_target"] = torch.tensor(logp_target, dtype=torch.long)
        batch["logp_seq"] = torch.tensor(logp_seq, dtype=torch.long)
    return batch


@dataclass
class PackedPairCollator:
    """Packs B pairs as segments [prompt | chosen | rejected] (sequences 0..B−1 chosen, B..2B−1 rejected)."""

    with_logps: bool = False
    chosen_logps_only: bool = False  # GRM's SFT regularizers read the chosen responses' log-probs only
    reference: ReferenceLogps | None = None  # GRM-DPO's precomputed reference log-probs
    fields: tuple[str, ...] = ()  # registered per-pair fields the objective reads (ODIN: 'length')

    def __call__(self, features: list[PairFeatures]) -> dict[str, Any]:
        count = len(features)
        logp_sequences = range(count) if self.chosen_logps_only else None
        segments = [
            Segment(f.prompt_ids, (f.chosen_ids, f.rejected_ids), (i, count + i))
            for i, f in enumerate(features)
        ]
        batch = pack_segments(segments, self.with_logps, logp_sequences)
        return {**batch, **pair_targets(features, self.reference, self.fields)}


def prompt_groups(features: Sequence[ResponseFeatures]) -> list[Segment]:
    """Responses to the same prompt token ids grouped into one segment each (first-seen order)."""
    groups: dict[tuple[int, ...], Segment] = {}
    for i, feature in enumerate(features):
        key = tuple(feature.prompt_ids)
        if key not in groups:
            groups[key] = Segment(feature.prompt_ids, [], [])
        groups[key].responses.append(feature.response_ids)  # type: ignore[attr-defined]
        groups[key].sequence_ids.append(i)  # type: ignore[attr-defined]
    return list(groups.values())


PairCollator = PackedPairCollator | PaddedPairCollator


def make_pair_collator(packed: bool, pad_token_id: int, needs: BatchNeeds = REWARDS_ONLY) -> PairCollator:
    """The packed collator for a model switched to packed attention (``model_setup.load_model``), else padded;
    batches carry what ``needs`` (the run description's) says. Precomputed reference log-probs are added
    once computed (``dataclasses.replace(collator, reference=...)``)."""
    options = dict(
        with_logps=needs.logps != "none", chosen_logps_only=needs.logps == "chosen", fields=needs.fields
    )
    if packed:
        return PackedPairCollator(**options)
    return PaddedPairCollator(pad_token_id, **options)


def pair_tokens(feature: PairFeatures, packed: bool) -> int:
    """Tokens a pair costs the model: [prompt|chosen|rejected] packed, or two padded prompt+response rows."""
    if packed:
        return len(feature.prompt_ids) + len(feature.chosen_ids) + len(feature.rejected_ids)
    return 2 * (len(feature.prompt_ids) + max(len(feature.chosen_ids), len(feature.rejected_ids)))
