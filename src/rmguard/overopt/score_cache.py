"""Scores cached per (scorer, prompt, response), so that reruns and resumed runs score only what is new."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path

from rmguard.data.records import Text
from rmguard.fileio import atomic_write_json

ScoreFunction = Callable[[Sequence[Text], Sequence[Text]], list[float]]


def item_key(prompt: Text, response: Text) -> str:
    return hashlib.sha1(
        json.dumps([prompt, response], sort_keys=True, ensure_ascii=False).encode()
    ).hexdigest()


def scorer_key(name: str, source: str) -> str:
    """``name@fingerprint``: a reward-model folder is fingerprinted by its real path and the size and time of
    every file in it, so scores of a retrained or replaced model are never reused; a gold function
    (``module:function``) by its spec."""
    path = Path(source)
    if not path.is_dir():
        return f"{name}@{source}"
    stats = sorted(
        (str(f.relative_to(path)), f.stat().st_size, f.stat().st_mtime_ns)
        for f in path.rglob("*")
        if f.is_file()
    )
    digest = hashlib.sha1(json.dumps([str(path.resolve()), stats]).encode()).hexdigest()[:16]
    return f"{name}@{digest}"


class ScoreCache:
    """``{scorer: {item: score}}`` in one JSON file, written atomically after every chunk."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.data: dict[str, dict[str, float]] = (
            json.loads(self.path.read_text()) if self.path.is_file() else {}
        )

    def score(
        self,
        scorer: str,
        load: Callable[[], ScoreFunction],
        prompts: Sequence[Text],
        responses: Sequence[Text],
        chunk: int = 256,
        progress: Callable[[int, int], None] | None = None,
    ) -> list[float]:
        """Scores of every item under ``scorer``; ``load()`` builds the score function only if something is missing."""
        cached = self.data.setdefault(scorer, {})
        keys = [item_key(p, r) for p, r in zip(prompts, responses)]
        first: dict[str, int] = {}  # a repeated item is scored once
        for i, key in enumerate(keys):
            if key not in cached:
                first.setdefault(key, i)
        missing = list(first.values())
        if missing:
            function = load()
            for start in range(0, len(missing), chunk):
                part = missing[start : start + chunk]
                for i, value in zip(part, function([prompts[i] for i in part], [responses[i] for i in part])):
                    cached[keys[i]] = float(value)
                atomic_write_json(self.path, self.data)
                if progress:
                    progress(min(start + chunk, len(missing)), len(missing))
        return [cached[k] for k in keys]
