"""Ctrl-C: one line of its own saying what the run left, then the exact command that goes on."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from rmguard.cli import main

from helpers import write_jsonl


def _interrupt(*_, **__):
    raise KeyboardInterrupt


def test_interrupted_training_names_its_checkpoint_and_the_resume_command(
    tmp_path, monkeypatch, capsys
) -> None:
    data = write_jsonl(tmp_path / "pairs.jsonl", [{"prompt": "p", "chosen": "a", "rejected": "b"}])
    out = tmp_path / "rm"

    def stopped_after_a_checkpoint(config):
        for step in (2, 4):
            folder = out / "checkpoints" / f"checkpoint-{step}"
            folder.mkdir(parents=True)
            (folder / "trainer_state.json").write_text(json.dumps({"global_step": step, "epoch": 0}))
        raise KeyboardInterrupt

    monkeypatch.setattr("rmguard.training.trainer.train", stopped_after_a_checkpoint)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # a progress bar may hold the line
    argv = ["train", "--train_file", str(data), "--output_dir", str(out), "--save-steps", "2"]
    assert main([*argv, "--overwrite_output_dir"]) == 130
    assert capsys.readouterr().err.split("\n") == [
        "",
        f"rmguard train: interrupted; last checkpoint {out}/checkpoints/checkpoint-4",
        f"resume: rmguard train --train_file {data} --output_dir {out} --save-steps 2 "
        "--resume_from_checkpoint latest",
        "",
    ]


def test_training_interrupted_before_its_first_checkpoint_says_to_start_over(
    tmp_path, monkeypatch, capsys
) -> None:
    data = write_jsonl(tmp_path / "pairs.jsonl", [{"prompt": "p", "chosen": "a", "rejected": "b"}])
    monkeypatch.setattr("rmguard.training.trainer.train", _interrupt)
    assert main(["train", "--train_file", str(data), "--output_dir", str(tmp_path / "rm")]) == 130
    assert capsys.readouterr().err.splitlines() == [
        "rmguard train: interrupted; no checkpoint yet (save_steps)",
        f"start over: rmguard train --train_file {data} --output_dir {tmp_path / 'rm'} --overwrite_output_dir",
    ]


@pytest.mark.parametrize("wrote_records", [True, False])
def test_interrupted_tamper_run_keeps_its_records_and_says_how_to_resume(
    tmp_path, monkeypatch, capsys, wrote_records
) -> None:
    output = tmp_path / "r.jsonl"

    def stopped(config, policy, path, **_):
        if wrote_records:
            Path(path).write_text(json.dumps({"environment": "political_sycophancy", "sample": 0}) + "\n")
        raise KeyboardInterrupt

    monkeypatch.setattr("rmguard.tamper.runner.run_curriculum", stopped)
    argv = f"tamper run --env political_sycophancy --policy scripted:honest --output {output}".split()
    assert main([*argv, "--resume_from_checkpoint", "latest"]) == 130
    note = [
        f"rmguard tamper: interrupted; its finished work is kept in {output}",
        f"resume: rmguard {' '.join(argv)} --resume_from_checkpoint latest",
    ]
    assert capsys.readouterr().err.splitlines() == (
        note if wrote_records else ["rmguard tamper: interrupted"]
    )
