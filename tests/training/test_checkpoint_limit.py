"""save_total_limit (TRL's name) keeps the newest k checkpoints; the shipped examples keep one (a SmolLM2-135M
checkpoint with its AdamW moments is 1.6 GB)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rmguard.training.checkpoints import list_checkpoints
from rmguard.training.config import load_config
from rmguard.training.trainer import train

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))


@pytest.mark.parametrize("limit", [1, 2])
def test_the_newest_checkpoints_are_kept(tiny_llama, synthetic_data, tmp_path, limit) -> None:
    settings = {"model_name_or_path": str(tiny_llama), "train_file": str(synthetic_data["train"])}
    settings |= {"output_dir": str(tmp_path), "max_steps": 3, "save_steps": 1, "save_total_limit": limit}
    train(load_config(None, {**settings, "disable_tqdm": True, "report_to": ["none"]}))
    assert [p.name for p in list_checkpoints(tmp_path)] == [f"checkpoint-{s}" for s in range(4 - limit, 4)]


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_the_examples_keep_one_checkpoint(example) -> None:
    config = load_config(str(example), {})
    assert config.save_steps > 0 and config.save_total_limit == 1
