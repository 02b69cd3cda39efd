"""The Starlette application and its uvicorn runner.

Every answer is JSON: rewards in request order, or ``{"error": one line}`` with a 4xx status for the
client's mistakes (400 malformed, 413 too large, 404/405 wrong route or method), 503 when the queue is
full or the server is stopping, 500 only when the model itself fails. Shutdown (SIGINT/SIGTERM) stops
accepting connections, finishes the requests in flight, then stops the scoring thread.
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
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from rmguard.data.records import ScoredResponse
from rmguard.serve.batcher import DynamicBatcher
from rmguard.serve.requests import Limits, RequestError, get_reward_items, parse_json, score_items

log = logging.getLogger("rmguard.serve")


def _error(status: int, message: str) -> JSONResponse:
    headers = {"Retry-After": "1"} if status == 503 else None
    return JSONResponse({"error": message}, status_code=status, headers=headers)


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
    """The server's application around a loaded :class:`rmguard.scoring.RewardScorer`."""
    batcher = DynamicBatcher(scorer, max_queue_items, limits.max_length)
    pad_token = scorer.tokenizer.pad_token

    def endpoint(
        parse: Callable[[dict[str, Any]], list[ScoredResponse]],
        field: str,
        reply: Callable[[list[float]], dict],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            try:
                items = parse(parse_json(await _read_body(request, limits.max_request_bytes)))
                rewards = await batcher.submit(items, field)
                return JSONResponse(reply(rewards))  # a non-finite reward fails here: JSON has no NaN
            except RequestError as error:
                return _error(error.status, str(error))
            except Exception as error:  # the model failed; the server keeps serving
                log.exception("request failed")
                return _error(500, f"scoring failed: {type(error).__name__}: {str(error)[:300]}")

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

    # OpenRLHF reads "rewards"; its newer clients also read "scores" and "extra_logs".
    routes = [
        Route(
            "/get_reward",
            endpoint(
                lambda payload: get_reward_items(payload, limits, pad_token),
                "query",
                lambda r: {"rewards": r, "scores": r, "extra_logs": {}},
            ),
            methods=["POST"],
        ),
        Route(
            "/score",
            endpoint(lambda payload: score_items(payload, limits), "items", lambda r: {"rewards": r}),
            methods=["POST"],
        ),
        Route("/health", health, methods=["GET"]),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: http_error}, lifespan=lifespan)


def run_server(app: Starlette, host: str, port: int) -> None:
    """Serve until SIGINT/SIGTERM; requests in flight get up to 30 s to finish. uvicorn then re-raises
    the signal, so the process ends with the signal's status as servers conventionally do."""
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=30)
    uvicorn.Server(config).run()
