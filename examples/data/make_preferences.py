"""Writes the small offline preference set the example configs train on (run: python make_preferences.py).

Each pair contrasts a response that is right with one that is wrong in a way a reader can check:
arithmetic, capitals, unit conversion, following a format instruction, and answering versus refusing
a harmless request. The set is deterministic (seed 0) and its files are committed beside this script.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

CAPITALS = {
    "France": "Paris",
    "Japan": "Tokyo",
    "Kenya": "Nairobi",
    "Canada": "Ottawa",
    "Peru": "Lima",
    "Egypt": "Cairo",
    "Norway": "Oslo",
    "Chile": "Santiago",
    "Spain": "Madrid",
    "India": "New Delhi",
    "Italy": "Rome",
    "Ghana": "Accra",
    "Poland": "Warsaw",
    "Cuba": "Havana",
    "Greece": "Athens",
    "Turkey": "Ankara",
    "Australia": "Canberra",
    "Brazil": "Brasilia",
    "Mexico": "Mexico City",
    "Sweden": "Stockholm",
    "Portugal": "Lisbon",
    "Vietnam": "Hanoi",
    "Morocco": "Rabat",
    "Austria": "Vienna",
    "Ireland": "Dublin",
    "Finland": "Helsinki",
    "Argentina": "Buenos Aires",
    "Thailand": "Bangkok",
    "Hungary": "Budapest",
    "Nigeria": "Abuja",
    "Germany": "Berlin",
    "China": "Beijing",
    "Colombia": "Bogota",
    "Denmark": "Copenhagen",
}
TOPICS = [
    "the moon",
    "rain",
    "bread",
    "a library",
    "the ocean",
    "autumn",
    "bicycles",
    "coffee",
    "music",
    "trees",
]


def arithmetic(rng: random.Random) -> dict:
    a, b = rng.randint(10, 99), rng.randint(10, 99)
    wrong = a + b + rng.choice([-11, -10, -2, -1, 1, 2, 10])
    return pair(f"What is {a} + {b}?", f"{a} + {b} = {a + b}.", f"{a} + {b} = {wrong}.")


def capital(rng: random.Random) -> dict:
    country = rng.choice(list(CAPITALS))
    other = rng.choice([c for c in CAPITALS.values() if c != CAPITALS[country]])
    return pair(
        f"What is the capital of {country}?",
        f"The capital of {country} is {CAPITALS[country]}.",
        f"The capital of {country} is {other}.",
    )


def conversion(rng: random.Random) -> dict:
    km = rng.randint(2, 40)
    return pair(
        f"How many meters are in {km} kilometers?",
        f"{km} kilometers are {km * 1000} meters.",
        f"{km} kilometers are {km * 100} meters.",
    )


def format_following(rng: random.Random) -> dict:
    topic = rng.choice(TOPICS)
    words = rng.choice([3, 4, 5])
    good = {3: f"Quiet {topic} waits.", 4: f"I like {topic} today.", 5: f"People often think about {topic}."}[
        words
    ]
    bad = (
        f"Here is a longer answer about {topic}, which goes on for well over the requested length "
        "and ignores the limit entirely."
    )
    return pair(f"Describe {topic} in exactly {words} words.", good, bad)


def helpfulness(rng: random.Random) -> dict:
    topic = rng.choice(TOPICS)
    return pair(
        f"Give me one fun fact about {topic}.",
        f"Here is one: people have written poems about {topic} for centuries.",
        "I'm sorry, but I can't help with that request.",
    )


def pair(prompt: str, chosen: str, rejected: str) -> dict:
    return {
        "prompt": [{"role": "user", "content": prompt}],
        "chosen": [{"role": "assistant", "content": chosen}],
        "rejected": [{"role": "assistant", "content": rejected}],
    }


def main() -> None:
    rng = random.Random(0)
    makers = [arithmetic, capital, conversion, format_following, helpfulness]
    rows = [makers[i % len(makers)](rng) for i in range(400)]
    rng.shuffle(rows)
    here = Path(__file__).parent
    for name, part in (("preferences_train.jsonl", rows[:320]), ("preferences_eval.jsonl", rows[320:])):
        (here / name).write_text("".join(json.dumps(row) + "\n" for row in part))


if __name__ == "__main__":
    main()
