"""Length-grouped batches under a token budget, in an order that is random per epoch and replayable.

Per epoch e, from (seed, e) alone:
  1. a random permutation of all items;
  2. cut into windows of ``window`` items, each sorted by length (so a batch holds similar lengths and
     packs or pads with little waste);
  3. each window cut greedily into batches whose summed length stays within ``max_tokens``
     (an item longer than the budget forms a batch alone);
  4. the batches shuffled, so long and short batches are spread through the epoch.
A resumed run calls ``set_epoch`` and replays exactly the same batches.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler

# Items per sorted window, as a multiple of the average batch: large enough to group lengths well,
# small enough that which items meet in a batch still changes from epoch to epoch.
WINDOW_BATCHES = 32


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The one random source of an epoch's order (shared with the fixed-size sampler)."""
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


class TokenBudgetBatchSampler(Sampler[list[int]]):
    """Yields lists of item indices whose ``lengths`` sum to at most ``max_tokens``."""

    def __init__(self, lengths: Sequence[int], max_tokens: int, seed: int, max_items: int | None = None):
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, got {max_tokens}")
        self.lengths = list(lengths)
        self.max_tokens, self.seed, self.max_items = max_tokens, seed, max_items
        per_batch = max(1, max_tokens * len(self.lengths) // max(1, sum(self.lengths)))
        self.window = max(1, WINDOW_BATCHES * per_batch)
        self.epoch = 0
        self._plans: dict[int, list[list[int]]] = {}

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def plan(self, epoch: int) -> list[list[int]]:
        """The batches of ``epoch``, in order."""
        if epoch not in self._plans:
            generator = epoch_generator(self.seed, epoch)
            order = torch.randperm(len(self.lengths), generator=generator).tolist()
            batches: list[list[int]] = []
            for start in range(0, len(order), self.window):
                window = sorted(order[start : start + self.window], key=lambda i: self.lengths[i])
                batches += self._cut(window)
            shuffled = torch.randperm(len(batches), generator=generator).tolist()
            self._plans = {epoch: [batches[i] for i in shuffled]}  # keep one epoch: plans are cheap to redo
        return self._plans[epoch]

    def _cut(self, items: list[int]) -> list[list[int]]:
        batches: list[list[int]] = []
        current: list[int] = []
        tokens = 0
        for item in items:
            full = self.max_items is not None and len(current) >= self.max_items
            if current and (tokens + self.lengths[item] > self.max_tokens or full):
                batches.append(current)
                current, tokens = [], 0
            current.append(item)
            tokens += self.lengths[item]
        if current:
            batches.append(current)
        return batches

    def num_batches(self, epoch: int) -> int:
        return len(self.plan(epoch))

    def __len__(self) -> int:
        return self.num_batches(self.epoch)

    def __iter__(self) -> Iterator[list[int]]:
        yield from self.plan(self.epoch)


class EpochShuffleSampler(Sampler[int]):
    """A fresh permutation per epoch from (seed, epoch) alone, so a resumed run replays the same order."""

    def __init__(self, size: int, seed: int):
        self.size, self.seed, self.epoch = size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[int]:
        yield from torch.randperm(self.size, generator=epoch_generator(self.seed, self.epoch)).tolist()
