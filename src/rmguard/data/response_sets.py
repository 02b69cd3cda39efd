"""Multi-response records (UltraFeedback layout): one prompt, several responses, each with its model name.

Layout read and written by ``rmguard label``, ``split``, ``eval`` and ``diagnose`` (see docs/evaluation.md)::

    {"id": "…", "instruction": "…" (or "prompt": text or chat messages),
     "completions": [{"model": "…", "response": "…", "gold_score": 1.5, …}, …], …}

``id`` is kept when the file has one, else derived from the prompt text (a stable hash), so the same prompt
gets the same id in every file made from it. Every other field of a row and of a completion is kept on
rewrite. The gold score is ``gold_score`` when present, else the first UltraFeedback score field.

The BSR paper's Kendall-τ files (LinkedIn-XFACT/RM-Robustness, scripts/run_kendall.py) are read as they are:
``{"instruction", "response_1_text", …, "response_k_text", "all_scores": [gold_1, …, gold_k]}``; response i
is ``response_{i}_text`` with gold ``all_scores[i-1]``, and any other ``response_{i}_<name>`` field (such as
``response_{i}_model``) becomes field ``<name>`` of that completion.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from rmguard.data.formats import (
    COMPLETION_SCORE_KEYS,
    as_reply,
    as_user_turn,
    check_text,
    completion_score,
    ultrafeedback_prompt,
)
from rmguard.data.records import Message, Text
from rmguard.data.sources import read_rows
from rmguard.errors import DataError

GOLD_FIELD = "gold_score"
TAU_SCORES_FIELD = "all_scores"
_TAU_RESPONSE_FIELD = re.compile(r"response_([1-9][0-9]*)_(.+)")


@dataclass
class Completion:
    model: str | None
    response: Text
    gold: float | None
    fields: dict[str, Any] = field(default_factory=dict)  # the completion object as read


@dataclass
class ResponseSet:
    id: str
    prompt: Text
    completions: list[Completion]
    source: str = ""
    row: int = 0
    fields: dict[str, Any] = field(default_factory=dict)  # the row as read

    @property
    def chat_prompt(self) -> Text:
        """The prompt as training sees UltraFeedback rows: a plain instruction becomes a user turn."""
        return as_user_turn(self.prompt)

    def chat_response(self, index: int) -> list[Message]:
        return as_reply(self.completions[index].response)

    @property
    def golds(self) -> list[float]:
        return [c.gold for c in self.completions]

    def with_completions(self, completions: list[Completion]) -> ResponseSet:
        return ResponseSet(self.id, self.prompt, completions, self.source, self.row, self.fields)

    def to_row(self) -> dict[str, Any]:
        completions = []
        for c in self.completions:
            out = dict(c.fields)
            out["response"] = c.response
            if c.model is not None:
                out["model"] = c.model
            if c.gold is not None:
                out[GOLD_FIELD] = c.gold
            completions.append(out)
        return {**self.fields, "id": self.id, "completions": completions}


def prompt_id(prompt: Text) -> str:
    """A stable id for a prompt: the first 16 hex digits of SHA-1 over its canonical JSON."""
    return hashlib.sha1(json.dumps(prompt, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]


def is_tau_row(row: dict[str, Any]) -> bool:
    """A row of the BSR paper's Kendall-τ files (``instruction``, ``response_1_text`` …, ``all_scores``)."""
    return TAU_SCORES_FIELD in row and "response_1_text" in row and "completions" not in row


def tau_row_as_record(row: dict[str, Any], source: str, number: int) -> dict[str, Any]:
    """A Kendall-τ row in the completions layout: response i = ``response_{i}_text``, gold ``all_scores[i-1]``.

    Responses are numbered 1…k without gaps; ``all_scores`` must hold exactly k scores, in that order.
    """
    per_response: dict[int, dict[str, Any]] = {}
    rest: dict[str, Any] = {}
    for key, value in row.items():
        match = _TAU_RESPONSE_FIELD.fullmatch(key)
        if match:
            name = "response" if match[2] == "text" else match[2]
            per_response.setdefault(int(match[1]), {})[name] = value
        elif key != TAU_SCORES_FIELD:
            rest[key] = value
    count = len(per_response)
    for index in range(1, count + 1):
        if "response" not in per_response.get(index, {}):
            raise DataError(
                source,
                "missing field (responses are numbered 1…k)",
                row=number,
                field=f"response_{index}_text",
            )
    scores = row[TAU_SCORES_FIELD]
    if not isinstance(scores, list) or len(scores) != count:
        got = f"{len(scores)} scores" if isinstance(scores, list) else type(scores).__name__
        raise DataError(
            source,
            f"expected a list of {count} gold scores (one per response_i_text), got {got}",
            row=number,
            field=TAU_SCORES_FIELD,
        )
    for index, score in enumerate(scores):
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
            raise DataError(
                source,
                f"expected a finite number, got {score!r}",
                row=number,
                field=f"{TAU_SCORES_FIELD}[{index}]",
            )
    completions = [{**per_response[i], GOLD_FIELD: scores[i - 1]} for i in range(1, count + 1)]
    return {**rest, "completions": completions}


def _completion_field(tau: bool, index: int, key: str) -> str:
    """The field a user looks for: ``completions[i].<key>``, or ``response_{i+1}_<key>`` in a τ file."""
    if tau:
        return f"response_{index + 1}_{'text' if key == 'response' else key}"
    return f"completions[{index}].{key}"


def parse_response_set(
    row: dict[str, Any], source: str, number: int, require_gold: bool = False, require_models: bool = False
) -> ResponseSet:
    tau = is_tau_row(row)
    if tau:
        row = tau_row_as_record(row, source, number)
    prompt = ultrafeedback_prompt(row, source, number)
    raw = row.get("completions")
    if not isinstance(raw, list) or not raw:
        raise DataError(source, "expected a non-empty list of completions", row=number, field="completions")
    completions = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            raise DataError(source, "completion is not an object", row=number, field=f"completions[{index}]")
        response = check_text(item.get("response"), source, number, _completion_field(tau, index, "response"))
        model = item.get("model")
        model_field = _completion_field(tau, index, "model")
        if model is not None and not isinstance(model, str):
            raise DataError(
                source, f"model name must be a string, got {model!r}", row=number, field=model_field
            )
        if require_models and not model:
            raise DataError(
                source,
                "no model name (every response needs the name of the model that wrote it)",
                row=number,
                field=model_field,
            )
        gold = completion_gold(item, source, number, index, require_gold)
        completions.append(
            Completion(model, response, gold, {k: v for k, v in item.items() if k != "response"})
        )
    identifier = row.get("id")
    identifier = prompt_id(prompt) if identifier is None else str(identifier)
    fields = {k: v for k, v in row.items() if k not in ("completions", "id")}
    return ResponseSet(identifier, prompt, completions, source, number, fields)


def completion_gold(
    item: dict[str, Any], source: str, number: int, index: int, required: bool
) -> float | None:
    """``gold_score`` if present, else the first UltraFeedback score field; None when absent and not required."""
    if item.get(GOLD_FIELD) is not None:
        return completion_score({GOLD_FIELD: item[GOLD_FIELD]}, source, number, index)
    if not required and all(item.get(key) is None for key in COMPLETION_SCORE_KEYS):
        return None
    return completion_score(item, source, number, index)


def read_response_sets(
    spec: str, require_gold: bool = False, require_models: bool = False
) -> list[ResponseSet]:
    """Multi-response records of a file; duplicate ids (or duplicate prompts without ids) are an error."""
    sets: list[ResponseSet] = []
    seen: dict[str, int] = {}
    for number, row in read_rows(spec):
        if "completions" not in row and not is_tau_row(row):
            raise DataError(
                spec,
                "not a multi-response record (no 'completions', nor response_i_text + all_scores)",
                row=number,
                field="completions",
            )
        item = parse_response_set(row, spec, number, require_gold, require_models)
        if item.id in seen:
            raise DataError(
                spec,
                f"duplicate id '{item.id}' (also on line {seen[item.id]}); same prompt twice? "
                "merge the rows or give each a distinct 'id'",
                row=number,
                field="id",
            )
        seen[item.id] = number
        sets.append(item)
    return sets
