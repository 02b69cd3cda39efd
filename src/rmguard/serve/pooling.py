"""vLLM's ``POST /classify`` and SGLang's ``POST /v1/embeddings``, as verl's reward loop calls them.

verl (verl/experimental/reward_loop/reward_loop.py, ``compute_score_disrm``) renders each rollout with the
reward model's chat template (``add_generation_prompt=False``, a leading BOS removed for the server to add)
and posts one sample per request: with ``rollout.name: vllm`` ``{"model", "input": text,
"use_activation": false}`` to ``/classify`` and reads ``data[-1]["probs"][-1]``; with ``sglang``
``{"model", "input": text}`` to ``/v1/embeddings`` and reads ``data[-1]["embedding"][-1]``.

The request and answer are vLLM's (vllm/entrypoints/pooling/classify/protocol.py:
``ClassificationCompletionRequest`` / ``ClassificationChatRequest`` → ``ClassificationResponse``), errors
vLLM's ``ErrorResponse`` ``{"error": {"message", "type", "param", "code"}}`` with ``code`` the HTTP status.
``input`` is one text or a list of texts (token-id input is refused: the text rule needs the text), or
``messages`` one conversation. A text is a chat rendering as verl sends it: the leading BOS verl removes is
put back where the template opens with one (vLLM re-adds it only where encoding adds BOS, as for Llama).
With vLLM's default activation a one-label model's probability is
sigmoid(r); ``use_activation: false`` (or the older ``activation: false``) gives the reward r itself.
The ``model`` field is echoed, not checked: verl sends its own path to the reward model.
"""

from __future__ import annotations

import math
import time
import uuid
from http import HTTPStatus
from typing import Any

from rmguard.data.records import ScoredResponse
from rmguard.serve.requests import Limits, RequestError, finished, score_items
from rmguard.text_rule import TextFinisher

# vLLM's error types (vllm/entrypoints/openai/engine/protocol.py ErrorInfo.type) for the statuses it sends.
_ERROR_TYPES = {
    400: "BadRequestError",
    404: "NotFoundError",
    422: "UnprocessableEntityError",
    500: "InternalServerError",
}


def error_body(status: int, message: str) -> dict[str, Any]:
    """vLLM's ``ErrorResponse``."""
    kind = _ERROR_TYPES.get(status, HTTPStatus(status).phrase.replace(" ", ""))
    return {"error": {"message": message, "type": kind, "param": None, "code": status}}


def pooling_items(payload: dict[str, Any], limits: Limits, finish: TextFinisher) -> list[ScoredResponse]:
    """Items of a ``/classify`` or ``/v1/embeddings`` request: each text of ``input``, or ``messages``."""
    _activation(payload)  # a bad value is refused before any scoring
    if ("input" in payload) == ("messages" in payload):
        raise RequestError(400, "expected either 'input' (a text or a list of texts) or 'messages'")
    if "messages" in payload:
        return score_items({"items": [{"messages": payload["messages"]}]}, limits)
    texts = payload["input"]
    texts = [texts] if isinstance(texts, str) else texts
    if not isinstance(texts, list) or not texts:
        raise RequestError(400, "'input' must be a text or a non-empty list of texts")
    if len(texts) > limits.max_request_items:
        raise RequestError(
            413, f"'input' has {len(texts)} texts; this server takes at most {limits.max_request_items}"
        )
    items = []
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise RequestError(
                400, f"input[{i}]: expected a text, got {type(text).__name__} (token ids are not taken)"
            )
        if not text.strip():
            raise RequestError(400, f"input[{i}]: empty text")
        items.append(
            ScoredResponse("", finished(finish, text, f"input[{i}]", bos_removed=True), "request", i)
        )
    return items


def _activation(payload: dict[str, Any]) -> bool:
    """vLLM's ``use_activation`` (``activation``, its older name): null or absent means on."""
    for name in ("use_activation", "activation"):
        value = payload.get(name)
        if value is not None:
            if not isinstance(value, bool):
                raise RequestError(400, f"'{name}' must be true, false or null")
            return value
    return True


def _usage(tokens: int) -> dict[str, Any]:
    return {
        "prompt_tokens": tokens,
        "total_tokens": tokens,
        "completion_tokens": 0,
        "prompt_tokens_details": None,
    }


def classify_reply(
    payload: dict[str, Any], model: str, label: str, rewards: list[float], tokens: int
) -> dict:
    """vLLM's ``ClassificationResponse`` for a one-label model."""
    sigmoid = _activation(payload)
    probs = [1.0 / (1.0 + math.exp(-r)) if sigmoid else r for r in rewards]
    return {
        "id": f"classify-{uuid.uuid4().hex}",
        "object": "list",
        "created": int(time.time()),
        "model": payload.get("model") or model,
        "data": [{"index": i, "label": label, "probs": [p], "num_classes": 1} for i, p in enumerate(probs)],
        "usage": _usage(tokens),
    }


def embeddings_reply(payload: dict[str, Any], model: str, rewards: list[float], tokens: int) -> dict:
    """SGLang's (OpenAI's) embeddings answer, the reward as a one-element embedding."""
    return {
        "object": "list",
        "model": payload.get("model") or model,
        "data": [{"object": "embedding", "index": i, "embedding": [r]} for i, r in enumerate(rewards)],
        "usage": _usage(tokens),
    }
