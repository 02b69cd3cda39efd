"""The Starlette application and its uvicorn runner.

Every answer is JSON: rewards in request order, or an error with a 4xx status for the client's mistakes
(400 malformed, 413 too large, 422 a text the model's text rule cannot score, 404/405 wrong route or
method), 503 when the queue is full or the server is stopping, 500 only when the model itself fails.
rmguard's and OpenRLHF's endpoints answer errors as ``{"error": one line}``, vLLM's as vLLM does
(``serve/pooling.py``). Shutdown (SIGINT/SIGTERM) stops accepting connections, finishes the requests in
flight, then stops the scoring thread.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from rmguard.data.records import ScoredResponse
from rmguard.serve.batcher import DynamicBatcher, Scored
from rmguard.serve.pooling import classify_reply, embeddings_reply, error_body, pooling_items
from rmguard.serve.requests import Limits, RequestError, get_reward_items, parse_json, score_items
from rmguard.text_rule import TextFinisher

log = logging.getLogger("rmguard.serve")


def _error(status: int, message: str, vllm: bool = False) -> JSONResponse:
    headers = {"Retry-After": "1"} if status == 503 else None
    body = error_body(status, message) if vllm else {"error": message}
    return JSONResponse(body, status_code=status, headers=headers)


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it passes ``limit`` bytes (declared or streamed)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise RequestError(413, f"body is {declared} bytes; this server takes at most {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(413, f"body passes {limit} bytes, the most this server takes")
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(scorer: Any, limits: Limits, max_queue_items: int, model_name: str) -> Starlette:
    """The server's application around a loaded :class:`rmguard.scoring.RewardScorer`; every endpoint
    ends a whole text by the scorer's text rule."""
    batcher = DynamicBatcher(scorer, max_queue_items, limits.max_length)
    pad_token = scorer.tokenizer.pad_token
    finish = TextFinisher(scorer.text_rule, scorer.tokenizer)
    label = (getattr(scorer.model.config, "id2label", None) or {}).get(0, "LABEL_0")

    def endpoint(
        parse: Callable[[dict[str, Any]], list[ScoredResponse]],
        field: str,
        reply: Callable[[dict[str, Any], Scored], dict],
        vllm: bool = False,
    ) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            try:
                payload = parse_json(await _read_body(request, limits.max_request_bytes))
                scored = await batcher.submit(parse(payload), field)
                return JSONResponse(reply(payload, scored))  # a non-finite reward fails here: JSON has no NaN
            except RequestError as error:
                return _error(error.status, str(error), vllm)
            except ClientDisconnect:  # the client went away before its body arrived: no one to answer
                return Response(status_code=400)
            except Exception as error:  # the model failed; the server keeps serving
                log.exception("request failed")
                return _error(500, f"scoring failed: {type(error).__name__}: {str(error)[:300]}", vllm)

        return handle

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "model": model_name, "queued_items": batcher.queued_items})

    async def http_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        return _error(error.status_code, f"{request.method} {request.url.path}: {error.detail}")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        batcher.start()
        yield
        batcher.close()  # uvicorn has finished the requests in flight; the queue is empty
        print("rmguard serve: stopped", file=sys.stderr, flush=True)

    def post(path: str, handle: Callable[[Request], Awaitable[Response]]) -> Route:
        return Route(path, handle, methods=["POST"])

    # OpenRLHF reads "rewards", its newer clients "scores" and "extra_logs" (openrlhf/utils/agent.py).
    get_reward = endpoint(
        lambda payload: get_reward_items(payload, limits, pad_token, finish),
        "query",
        lambda payload, s: {"rewards": s.rewards, "scores": s.rewards, "extra_logs": {}},
    )
    score = endpoint(
        lambda payload: score_items(payload, limits), "items", lambda p, s: {"rewards": s.rewards}
    )
    pooling = lambda payload: pooling_items(payload, limits, finish)  # noqa: E731
    classify = endpoint(
        pooling, "input", lambda p, s: classify_reply(p, model_name, label, s.rewards, s.tokens), vllm=True
    )
    embeddings = endpoint(
        pooling, "input", lambda p, s: embeddings_reply(p, model_name, s.rewards, s.tokens), vllm=True
    )
    routes = [
        post("/get_reward", get_reward),
        post("/score", score),
        post("/classify", classify),
        post("/v1/embeddings", embeddings),
        Route("/health", health, methods=["GET"]),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: http_error}, lifespan=lifespan)


def run_server(app: Starlette, host: str, port: int) -> None:
    """Serve until SIGINT/SIGTERM; requests in flight get up to 30 s to finish. uvicorn then re-raises
    the signal, so the process ends with the signal's status as servers conventionally do."""
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=30)
    uvicorn.Server(config).run()
