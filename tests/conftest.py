"""Session fixtures shared by every test: a tiny Llama saved with save_pretrained, synthetic pairs, the
CLI case server (``cli``: ``python -m rmguard`` in a forked process, for commands that stop early), and one
``rmguard demo --quick`` run that several tests read."""

from __future__ import annotations

import contextlib
import io
import os
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
def quick_demo(tmp_path_factory, tiny_llama) -> tuple[Path, str]:
    """(output folder, what it printed) of ``rmguard demo --quick`` on the tiny model, run once under umask
    022: the demo's tests read its report, the file-mode tests its files' modes."""
    from rmguard.cli import main

    out = tmp_path_factory.mktemp("quick-demo") / "demo"
    previous = os.umask(0o022)
    try:
        with contextlib.redirect_stdout(io.StringIO()) as printed:
            code = main(
                ["demo", "--quick", "--policy", str(tiny_llama), "--output-dir", str(out), "--no-progress"]
            )
    finally:
        os.umask(previous)
    assert code == 0
    return out, printed.getvalue()


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
