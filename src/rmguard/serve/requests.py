"""JSON payloads → items to score, or a :class:`RequestError` with the HTTP status and one line.

``POST /get_reward`` is OpenRLHF's remote reward protocol: ``{"query": [full text, ...]}`` (optional
``prompts``, the prompt each query starts with; other keys such as ``labels`` are ignored). Each query is
scored as ``rmguard score`` scores a plain-text response with no prompt: the text, pad tokens at either end
removed, + EOS unless it already ends with EOS. A query that starts with its prompt is split there, which
changes no token and lets responses to one prompt share its encoding.

``POST /score``: ``{"items": [{"prompt": P, "response": R} | {"messages": [...]}, ...]}``, P and R plain
text or chat messages, scored exactly as a prompt/response row of ``rmguard score``; ``messages`` is a
whole conversation whose reward is read at its last token.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from rmguard.data.records import ScoredResponse
from rmguard.errors import DataError
from rmguard.scoring import scored_response


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


def _list_field(payload: dict[str, Any], name: str, limits: Limits) -> list[Any]:
    if name not in payload:
        raise RequestError(400, f"missing field '{name}'")
    value = payload[name]
    if not isinstance(value, list) or not value:
        raise RequestError(400, f"'{name}' must be a non-empty list")
    if len(value) > limits.max_request_items:
        raise RequestError(
            413, f"'{name}' has {len(value)} entries; this server takes at most {limits.max_request_items}"
        )
    return value


def _strip_pad(text: str, pad: str | None) -> str:
    if not pad:
        return text
    while text.startswith(pad):
        text = text[len(pad) :]
    while text.endswith(pad):
        text = text[: -len(pad)]
    return text


def get_reward_items(payload: dict[str, Any], limits: Limits, pad_token: str | None) -> list[ScoredResponse]:
    """Items for an OpenRLHF ``/get_reward`` request, in query order."""
    queries = _list_field(payload, "query", limits)
    prompts = payload.get("prompts")
    if not (isinstance(prompts, list) and len(prompts) == len(queries)):
        prompts = [None] * len(queries)
    items = []
    for i, query in enumerate(queries):
        if not isinstance(query, str):
            raise RequestError(400, f"query[{i}]: expected a string, got {type(query).__name__}")
        text = _strip_pad(query, pad_token)
        if not text.strip():
            raise RequestError(400, f"query[{i}]: empty text")
        prompt = prompts[i]
        if isinstance(prompt, str) and prompt and text.startswith(prompt) and text != prompt:
            items.append(ScoredResponse(prompt, text[len(prompt) :], "request", i))
        else:
            items.append(ScoredResponse("", text, "request", i))
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
