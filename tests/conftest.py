"""Session fixtures shared by every test: a tiny Llama saved with save_pretrained, synthetic pairs, and the
CLI case server (``cli``: ``python -m rmguard`` in a forked process, for commands that stop early)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli_cases import CaseServer
from helpers import save_tiny_model, synthetic_pair, write_jsonl


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def synthetic_data(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("data")
    rng = random.Random(0)
    return {
        "train": write_jsonl(folder / "train.jsonl", [synthetic_pair(rng) for _ in range(96)]),
        "eval": write_jsonl(folder / "eval.jsonl", [synthetic_pair(rng) for _ in range(64)]),
    }


@pytest.fixture(scope="session")
def cli(tmp_path_factory) -> Iterator[CaseServer]:
    server = CaseServer(tmp_path_factory.mktemp("cli"))
    yield server
    server.close()
