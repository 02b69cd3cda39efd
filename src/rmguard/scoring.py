"""Scoring with a trained reward model: in memory (``RewardScorer``) or file to file (``score_file``)."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from rmguard import checks
from rmguard.calibration import load_calibration, response_length
from rmguard.data import read_rows, to_pairs
from rmguard.data.formats import check_text
from rmguard.data.records import RenderedText, ScoredResponse, Text
from rmguard.errors import DataError
from rmguard.fileio import atomic_write_jsonl, check_outputs
from rmguard.normalization import RewardStatistics, normalize, read_statistics
from rmguard.text_rule import RULES, apply_rule, checkpoint_rule, trained_rule
from rmguard.training.attention import enable_packed_attention
from rmguard.training.collate import ResponseCollator
from rmguard.training.modeling import RewardModel, load_reward_model
from rmguard.training.packing import Segment, pack_segments, prompt_groups
from rmguard.training.tokenization import ResponseFeatures, tokenize_responses


def model_max_length(model: RewardModel) -> int | None:
    """The longest sequence the model was built for (``max_position_embeddings``), the default cut."""
    return getattr(model.config.get_text_config(), "max_position_embeddings", None)


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class RewardScorer:
    """Rewards for (prompt, response) pairs, batched by length and returned in input order.

    ``model`` is a checkpoint folder or an already loaded (model, tokenizer) pair. With ``packing`` (used
    where it is exact for the model), the responses to one prompt share a single encoding of that prompt
    and several prompts share a row; ``batch_size`` counts responses either way. ``max_batch_tokens``
    also caps each forward pass at that many tokens (packed: the row's length; padded: rows × longest);
    a single sequence longer than the budget still runs, alone.

    A model folder that carries a length calibration (:mod:`rmguard.calibration`) gives calibrated
    rewards r − f(ℓ) on every path, unless ``calibrated`` is false; ``calibration`` holds it (None: raw).
    Texts are ended by the checkpoint's text rule (:mod:`rmguard.text_rule`; ``text_rule`` overrides it).
    With ``normalize`` every reward is then (r − mean) / std with the mean and std the checkpoint's config
    holds (:mod:`rmguard.normalization`, OpenRLHF's keys).
    """

    def __init__(
        self,
        model: str | Path | tuple[RewardModel, Any],
        batch_size: int = 16,
        max_length: int | None = None,
        device: str | torch.device | None = None,
        packing: bool = True,
        max_batch_tokens: int | None = None,
        calibrated: bool = True,
        normalize: bool = False,
        text_rule: str | None = None,
    ):
        checks.at_least("batch_size", batch_size)
        for name, value in (("max_length", max_length), ("max_batch_tokens", max_batch_tokens)):
            if value is not None:
                checks.at_least(name, value)
        self.calibration = load_calibration(model) if calibrated and isinstance(model, (str, Path)) else None
        self.model, self.tokenizer = load_reward_model(model) if isinstance(model, (str, Path)) else model
        self.device = torch.device(device) if device is not None else default_device()
        self.model.to(self.device).eval()
        exact, reason = enable_packed_attention(self.model.transformer) if packing else (False, "")
        if packing and not exact:
            logging.getLogger(__name__).warning("packing off: %s; scoring padded batches", reason)
        self.packing = exact
        self.batch_size = batch_size
        self.max_length = max_length or model_max_length(self.model)  # a 10 MB line is one error, not 10 GB
        self.max_batch_tokens = max_batch_tokens
        self.collator = ResponseCollator(self.tokenizer.pad_token_id)
        source = str(model) if isinstance(model, (str, Path)) else "the model"
        if text_rule is not None:
            RULES.lookup(text_rule)
            self.text_rule, self.text_rule_source = text_rule, "given"
        elif isinstance(model, (str, Path)):
            self.text_rule, self.text_rule_source = checkpoint_rule(model, self.tokenizer)
        else:
            self.text_rule = trained_rule(bool(self.tokenizer.chat_template))
            self.text_rule_source = "guessed from the tokenizer"
        self.statistics: RewardStatistics | None = (
            read_statistics(self.model.config, source) if normalize else None
        )

    def score(self, prompts: Sequence[Text], responses: Sequence[Text]) -> list[float]:
        return self.score_with_hidden(prompts, responses)[0].tolist()

    def score_items(self, items: list[ScoredResponse]) -> Tensor:
        return self.rewards(self.features(items))

    def features(self, items: list[ScoredResponse]) -> list[ResponseFeatures]:
        """Token ids of each item, by the one rule of :func:`rmguard.training.tokenization.render` with the
        model's text rule; each keeps its response's length before the rule (a calibration's ℓ)."""
        features = tokenize_responses(
            apply_rule(self.text_rule, self.tokenizer, items), self.tokenizer, self.max_length
        )
        for feature, item in zip(features, items):
            if not isinstance(item.response, RenderedText):
                feature.response_chars = response_length(item.response)
        return features

    def rewards(self, features: list[ResponseFeatures]) -> Tensor:
        """Rewards [N] for already tokenized items, in input order."""
        return self._adjusted(self._run(features)[0], features)

    def score_with_hidden(self, prompts: Sequence[Text], responses: Sequence[Text]) -> tuple[Tensor, Tensor]:
        """Rewards [N] and the final hidden states at the reward tokens [N, H]."""
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        items = [ScoredResponse(p, r, "<memory>", i + 1) for i, (p, r) in enumerate(zip(prompts, responses))]
        return self.rewards_with_hidden(self.features(items))

    def rewards_with_hidden(self, features: list[ResponseFeatures]) -> tuple[Tensor, Tensor]:
        """Rewards [N] and the final hidden states at the reward tokens [N, H] for already tokenized items
        (:meth:`features`; another scorer's with the same tokenizer and text rule), in input order."""
        rewards, hidden = self._run(features)
        return self._adjusted(rewards, features), hidden

    def _adjusted(self, rewards: Tensor, features: list[ResponseFeatures]) -> Tensor:
        """The model's raw rewards as this scorer reports them: length-calibrated first, where the model
        carries a calibration, then OpenRLHF's normalisation (on the calibrated reward), when asked for."""
        if self.calibration is not None:
            lengths = [f.response_chars for f in features]
            if None in lengths:
                raise ValueError(
                    "a length-calibrated model needs each response's length (tokenize_responses)"
                )
            calibrated = self.calibration.apply(rewards.double().numpy(), lengths)
            rewards = torch.from_numpy(calibrated).to(rewards.dtype)
        return rewards if self.statistics is None else normalize(rewards, self.statistics)

    @torch.inference_mode()
    def _run(self, features: list[ResponseFeatures]) -> tuple[Tensor, Tensor]:
        hidden_size = self.model.config.get_text_config().hidden_size
        rewards = torch.empty(len(features))
        hidden = torch.empty(len(features), hidden_size)
        batches = self._packed_batches(features) if self.packing else self._padded_batches(features)
        for chunk, batch in batches:
            output = self.model(**{key: value.to(self.device) for key, value in batch.items()})
            rewards[chunk] = output.rewards.float().cpu()
            hidden[chunk] = output.hidden.float().cpu()
        return rewards, hidden

    def _padded_batches(
        self, features: list[ResponseFeatures]
    ) -> Iterator[tuple[list[int], dict[str, Tensor]]]:
        """(input indices, batch): longest first, so similar lengths share a batch and memory peaks at the
        start; a batch ends at ``batch_size`` rows or when rows × longest would pass ``max_batch_tokens``."""
        lengths = [len(f.prompt_ids) + len(f.response_ids) for f in features]
        order = sorted(range(len(features)), key=lambda i: -lengths[i])
        budget = self.max_batch_tokens or float("inf")
        chunk: list[int] = []
        for i in order:  # the first index of a chunk is its longest
            if chunk and (len(chunk) == self.batch_size or (len(chunk) + 1) * lengths[chunk[0]] > budget):
                yield chunk, self.collator([features[j] for j in chunk])
                chunk = []
            chunk.append(i)
        if chunk:
            yield chunk, self.collator([features[j] for j in chunk])

    def _packed_batches(self, features: list[ResponseFeatures]) -> Iterator[tuple[list[int], dict[str, Any]]]:
        """(input indices, batch): one segment per prompt (split to fit ``batch_size`` responses and the
        token budget), longest first, segments added to a row while both limits hold."""
        segments = [piece for group in prompt_groups(features) for piece in self._split(group)]
        segments.sort(key=lambda s: -len(s))
        budget = self.max_batch_tokens or float("inf")
        groups: list[list[Segment]] = []
        for segment in segments:
            if (
                groups
                and sum(len(s.responses) for s in groups[-1]) + len(segment.responses) <= self.batch_size
                and sum(len(s) for s in groups[-1]) + len(segment) <= budget
            ):
                groups[-1].append(segment)
            else:
                groups.append([segment])
        for group in groups:
            local, offset = [], 0
            for s in group:  # the batch's own sequence numbering: 0..n−1 in segment order
                local.append(Segment(s.prompt, s.responses, range(offset, offset + len(s.responses))))
                offset += len(s.responses)
            yield [i for s in group for i in s.sequence_ids], pack_segments(local)

    def _split(self, group: Segment) -> Iterator[Segment]:
        """``group``'s responses in input order, cut into segments of at most ``batch_size`` responses and
        (beyond the first response of each) at most ``max_batch_tokens`` tokens with the prompt."""
        budget = self.max_batch_tokens or float("inf")
        start, size = 0, len(group.prompt)
        for k, response in enumerate(group.responses):
            if k > start and (k - start == self.batch_size or size + len(response) > budget):
                yield Segment(group.prompt, group.responses[start:k], group.sequence_ids[start:k])
                start, size = k, len(group.prompt)
            size += len(response)
        yield Segment(group.prompt, group.responses[start:], group.sequence_ids[start:])


def scored_response(row: dict[str, Any], source: str, number: int | None) -> ScoredResponse:
    """One prompt/response row as an item to score: texts checked, and a plain-text side next to a chat
    side made a message (a string response to a chat prompt is the assistant's turn)."""
    if "response" not in row:
        raise DataError(source, "missing field", row=number, field="response")
    prompt = row.get("prompt") or ""
    if prompt:
        prompt = check_text(prompt, source, number, "prompt")
    response = check_text(row["response"], source, number, "response")
    if isinstance(response, list) and not response:
        raise DataError(source, "no messages", row=number, field="response")
    if isinstance(response, str) and isinstance(prompt, list):
        response = [{"role": "assistant", "content": response}]
    if isinstance(prompt, str) and prompt and isinstance(response, list):
        prompt = [{"role": "user", "content": prompt}]
    return ScoredResponse(prompt, response, source, number or 0)


def load_score_items(
    spec: str, data_format: str = "auto"
) -> tuple[str, list[ScoredResponse], int, dict[int, Any]]:
    """Items to score from a file: ('pairs', [chosen_1, rejected_1, ...], pairs, ids) or ('responses', items,
    n, ids); ``ids`` maps a row number to the row's ``id`` field where it has one."""
    rows = read_rows(spec)
    ids = {number: row["id"] for number, row in rows if "id" in row}
    if "response" in rows[0][1]:
        items = [scored_response(row, spec, number) for number, row in rows]
        return "responses", items, len(items), ids
    pairs, _ = to_pairs(rows, spec, data_format)
    items = [ScoredResponse(p.prompt, side, spec, p.row) for p in pairs for side in (p.chosen, p.rejected)]
    return "pairs", items, len(pairs), ids


def score_file(
    model_path: str | Path,
    data: str,
    output: str | Path,
    batch_size: int = 16,
    data_format: str = "auto",
    max_length: int | None = None,
    packing: bool = True,
    normalize: bool = False,
) -> dict[str, Any]:
    """Score a pair file (chosen and rejected reward per pair) or a prompt/response file (one reward per
    line) and write JSONL in input order, atomically. Returns a summary."""
    check_outputs([output], [data, model_path])
    kind, items, count, ids = load_score_items(data, data_format)
    if count == 0:
        raise DataError(data, "nothing to score: no record gave a pair (responses that all tie give none)")
    scorer = RewardScorer(
        model_path, batch_size=batch_size, max_length=max_length, packing=packing, normalize=normalize
    )
    rewards = scorer.score_items(items).tolist()

    def where(row: int) -> dict[str, Any]:
        return {"row": row, "id": ids[row]} if row in ids else {"row": row}

    if kind == "pairs":
        records = [
            {
                **where(items[2 * i].row),
                "chosen_reward": rewards[2 * i],
                "rejected_reward": rewards[2 * i + 1],
            }
            for i in range(count)
        ]
        accuracy = sum(r["chosen_reward"] > r["rejected_reward"] for r in records) / count
        summary = {"kind": kind, "records": count, "accuracy": accuracy}
    else:
        records = [{**where(item.row), "reward": reward} for item, reward in zip(items, rewards)]
        summary = {"kind": kind, "records": count}
    atomic_write_jsonl(output, records)
    return {**summary, "output": str(output)}
