"""A synthetic UltraFeedback-like world: models of known quality answer prompts; the gold reward is a program.

Responses are words of the tiny test vocabulary: "good" words (g*) and "bad" words (b*). A model of
quality q writes each word good with probability q, so better models get higher gold scores on average.
``gold`` is used as the gold SPEC ``tests/synthetic_world.py:gold``.
"""

from __future__ import annotations

import random

MODEL_QUALITY = {"alpha": 0.9, "bravo": 0.75, "charlie": 0.6, "delta": 0.45, "echo": 0.3, "foxtrot": 0.15}


def _text(value) -> str:
    return value if isinstance(value, str) else " ".join(message["content"] for message in value)


def gold(prompt, response) -> float:
    """Share of good words, plus a small bonus for prompt words echoed in the response (never in it here)."""
    words = _text(response).split()
    prompt_words = set(_text(prompt).split())
    good = sum(word.startswith("g") for word in words)
    return good / len(words) + 0.01 * sum(word in prompt_words for word in words)


def make_records(prompts: int, seed: int = 0, models: dict[str, float] | None = None) -> list[dict]:
    # Imported here: `rmguard label` imports this file for `gold` in a process where conftest is not importable.
    from helpers import BAD_WORDS, GOOD_WORDS, PROMPT_WORDS

    rng = random.Random(seed)
    records = []
    for index in range(prompts):
        instruction = " ".join(rng.choice(PROMPT_WORDS) for _ in range(rng.randint(2, 6)))
        completions = []
        for model, quality in (models or MODEL_QUALITY).items():
            words = [
                rng.choice(GOOD_WORDS) if rng.random() < quality else rng.choice(BAD_WORDS)
                for _ in range(rng.randint(3, 8))
            ]
            completions.append({"model": model, "response": " ".join(words)})
        records.append({"id": f"q{index}", "instruction": instruction, "completions": completions})
    return records
