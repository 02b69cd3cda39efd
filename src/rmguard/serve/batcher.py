"""Dynamic batching: the items of every request waiting when the model is free are scored together.

Handlers (on the event loop) ``submit`` a request's items and await a future; one worker thread takes all
waiting requests at once, tokenizes each (a bad request fails alone), scores the union with the packed
scorer — which splits it into forward passes by ``batch_size`` and ``max_batch_tokens`` — and hands each
request its rewards, in its own order. While the model runs, new requests queue; at most
``max_queue_items`` items may wait, beyond that ``submit`` refuses (the client retries later).
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

from rmguard.data.records import ScoredResponse
from rmguard.errors import RMGuardError
from rmguard.serve.requests import RequestError


@dataclass(frozen=True)
class Scored:
    """A request's rewards, in its order, and the tokens they were read from."""

    rewards: list[float]
    tokens: int


@dataclass
class _Pending:
    items: list[ScoredResponse]
    field: str  # the request's list field, to name an item in an error
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop


def _resolve(future: asyncio.Future, result: Any = None, error: BaseException | None = None) -> None:
    """Runs on the event loop: a future whose client went away is cancelled and takes nothing."""
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class DynamicBatcher:
    """``scorer`` is a :class:`rmguard.scoring.RewardScorer` (``features`` and ``rewards``)."""

    def __init__(self, scorer: Any, max_queue_items: int, max_length: int | None):
        self.scorer = scorer
        self.max_queue_items = max_queue_items
        self.max_length = max_length
        self._queue: deque[_Pending] = deque()
        self._queued_items = 0
        self._condition = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._work, name="rmguard-scorer", daemon=True)

    @property
    def queued_items(self) -> int:
        return self._queued_items

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        """Score what is queued, then stop the worker."""
        with self._condition:
            self._closing = True
            self._condition.notify()
        self._thread.join()

    async def submit(self, items: list[ScoredResponse], field: str) -> Scored:
        """The rewards of ``items`` in order; RequestError 503 when the queue is full or closing."""
        if not items:
            return Scored([], 0)
        loop = asyncio.get_running_loop()
        pending = _Pending(items, field, loop.create_future(), loop)
        with self._condition:
            if self._closing:
                raise RequestError(503, "the server is shutting down")
            if self._queued_items + len(items) > self.max_queue_items:
                raise RequestError(
                    503,
                    f"queue full ({self._queued_items} items waiting, limit {self.max_queue_items}); retry later",
                )
            self._queue.append(pending)
            self._queued_items += len(items)
            self._condition.notify()
        return await pending.future

    def _take(self) -> list[_Pending] | None:
        """Every waiting request (blocking until there is one); None once closing and drained."""
        with self._condition:
            while not self._queue and not self._closing:
                self._condition.wait()
            if not self._queue:
                return None
            taken = list(self._queue)
            self._queue.clear()
            self._queued_items = 0
            return taken

    def _work(self) -> None:
        while (taken := self._take()) is not None:
            try:
                self._score(taken)
            except Exception as error:  # the model failed (e.g. out of memory): fail these, keep serving
                for p in taken:  # each handler answers 500 and logs the traceback
                    p.loop.call_soon_threadsafe(_resolve, p.future, None, error)

    def _score(self, taken: list[_Pending]) -> None:
        accepted, features = [], []
        for p in taken:
            try:
                request_features = self._tokenize(p)
            except RequestError as error:
                p.loop.call_soon_threadsafe(_resolve, p.future, None, error)
                continue
            tokens = sum(len(f.prompt_ids) + len(f.response_ids) for f in request_features)
            accepted.append((p, len(features), len(request_features), tokens))
            features.extend(request_features)
        if not features:
            return
        rewards = self.scorer.rewards(features).tolist()
        for p, start, count, tokens in accepted:
            p.loop.call_soon_threadsafe(_resolve, p.future, Scored(rewards[start : start + count], tokens))

    def _tokenize(self, p: _Pending) -> list[Any]:
        try:
            features = self.scorer.features(p.items)
        except RMGuardError as error:  # e.g. chat messages for a model without a chat template
            raise RequestError(400, str(error)) from None
        if self.max_length is not None:
            for item, f in zip(p.items, features):
                length = len(f.prompt_ids) + len(f.response_ids)
                if length > self.max_length:
                    raise RequestError(
                        413,
                        f"{p.field}[{item.row}] is {length} tokens; this server scores at most {self.max_length}",
                    )
        return features
