"""JSON payloads → items to score, or a :class:`RequestError` with the HTTP status and one line.

``POST /get_reward`` is OpenRLHF's remote reward protocol (openrlhf/utils/agent.py,
``_fetch_rewards_via_http``): ``{"query": [full text, ...], "prompts": [...], "labels": [...]}``; prompts
and labels, when sent, have one entry per query. A query is ended by the model's text rule
(:mod:`rmguard.text_rule`) after pad tokens at either end are removed; a query that starts with its
prompt is split there, which changes no token and lets responses to one prompt share its encoding. An
empty ``query`` is answered with empty lists: OpenRLHF spreads one sample over comma-separated URLs and
sends the servers beyond the first an empty shard.

``POST /score``: ``{"items": [{"prompt": P, "response": R} | {"messages": [...]}, ...]}``, P and R plain
text or chat messages, scored exactly as a prompt/response row of ``rmguard score``; ``messages`` is a
whole conversation whose reward is read at its last token.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from rmguard.data.records import RenderedText, ScoredResponse
from rmguard.errors import DataError
from rmguard.scoring import scored_response
from rmguard.text_rule import TextFinisher


class RequestError(Exception):
    """A request the server refuses: ``status`` is the HTTP status, the message one line for the client."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Limits:
    """What one request may hold: body bytes, items, tokens per item."""

    max_request_bytes: int
    max_request_items: int
    max_length: int | None


def parse_json(body: bytes) -> dict[str, Any]:
    """The request body as a JSON object (400 for anything else)."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError is a ValueError
        raise RequestError(400, f"body is not valid JSON: {str(error)[:200]}") from None
    if not isinstance(payload, dict):
        raise RequestError(400, f"body must be a JSON object, got {type(payload).__name__}")
    return payload


def _list_field(payload: dict[str, Any], name: str, limits: Limits, allow_empty: bool = False) -> list[Any]:
    if name not in payload:
        raise RequestError(400, f"missing field '{name}'")
    value = payload[name]
    if not isinstance(value, list) or not (value or allow_empty):
        raise RequestError(400, f"'{name}' must be a {'' if allow_empty else 'non-empty '}list")
    if len(value) > limits.max_request_items:
        raise RequestError(
            413, f"'{name}' has {len(value)} entries; this server takes at most {limits.max_request_items}"
        )
    return value


def _parallel(payload: dict[str, Any], name: str, count: int) -> list[Any]:
    """An optional per-query list (``prompts``, ``labels``): one entry per query, or absent/null."""
    value = payload.get(name)
    if value is None:
        return [None] * count
    if not isinstance(value, list) or len(value) != count:
        got = f"{len(value)} entries" if isinstance(value, list) else type(value).__name__
        raise RequestError(400, f"'{name}' must be a list with one entry per query ({count}), got {got}")
    return value


def finished(finish: TextFinisher, text: str, where: str, bos_removed: bool = False) -> RenderedText:
    """``text`` ended by the model's text rule; 422 naming ``where`` when the rule cannot score it."""
    try:
        return finish(text, where, bos_removed)
    except DataError as error:
        raise RequestError(422, str(error)) from None


def _strip_pad(text: str, pad: str | None) -> str:
    if not pad:
        return text
    while text.startswith(pad):
        text = text[len(pad) :]
    while text.endswith(pad):
        text = text[: -len(pad)]
    return text


def get_reward_items(
    payload: dict[str, Any], limits: Limits, pad_token: str | None, finish: TextFinisher
) -> list[ScoredResponse]:
    """Items for an OpenRLHF ``/get_reward`` request, in query order."""
    queries = _list_field(payload, "query", limits, allow_empty=True)
    prompts = _parallel(payload, "prompts", len(queries))
    _parallel(payload, "labels", len(queries))  # checked, not used: a reward model reads no label
    items = []
    for i, query in enumerate(queries):
        if not isinstance(query, str):
            raise RequestError(400, f"query[{i}]: expected a string, got {type(query).__name__}")
        text = _strip_pad(query, pad_token)
        if not text.strip():
            raise RequestError(400, f"query[{i}]: empty text")
        full = finished(finish, text, f"query[{i}]")
        prompt = prompts[i]
        if isinstance(prompt, str) and prompt and full.text.startswith(prompt) and full.text != prompt:
            rest = RenderedText(full.text[len(prompt) :], full.add_special_tokens)
            items.append(ScoredResponse(prompt, rest, "request", i))
        else:
            items.append(ScoredResponse("", full, "request", i))
    return items


def score_items(payload: dict[str, Any], limits: Limits) -> list[ScoredResponse]:
    """Items for a ``/score`` request, in order."""
    entries = _list_field(payload, "items", limits)
    items = []
    for i, entry in enumerate(entries):
        where = f"items[{i}]"
        if not isinstance(entry, dict):
            raise RequestError(400, f"{where}: expected an object, got {type(entry).__name__}")
        unknown = sorted(set(entry) - {"prompt", "response", "messages"})
        if unknown or ("messages" in entry) == ("response" in entry):
            raise RequestError(
                400, f"{where}: expected either 'prompt' and 'response' or 'messages' (got {sorted(entry)})"
            )
        row = entry
        if "messages" in entry:
            if "prompt" in entry or not isinstance(entry["messages"], list) or not entry["messages"]:
                raise RequestError(400, f"{where}: 'messages' must be a non-empty list of messages alone")
            row = {"prompt": entry["messages"][:-1], "response": entry["messages"][-1:]}
        try:
            items.append(replace(scored_response(row, where, None), row=i))
        except DataError as error:
            raise RequestError(400, str(error)) from None
    return items
