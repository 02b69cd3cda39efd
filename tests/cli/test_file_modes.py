"""Outputs are created with the user's umask (a team on a shared filesystem reads each other's results):
under umask 022 every file a writing command leaves is 0644 and every folder 0755, atomic writes included
(their temporary files start at 0600)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from rmguard.cli import main
from rmguard.fileio import atomic_directory, atomic_write_text

from helpers import write_jsonl
from synthetic_world import make_records

GOLD = str(Path(__file__).parents[1] / "synthetic_world.py") + ":gold"


@pytest.fixture
def umask_022():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def _wrong_modes(root: Path) -> list[str]:
    wrong = []
    for path in [root, *root.rglob("*")]:
        mode, want = stat.S_IMODE(path.lstat().st_mode), 0o755 if path.is_dir() else 0o644
        if not path.is_symlink() and mode != want:
            wrong.append(f"{path.relative_to(root.parent)}: {oct(mode)}")
    return wrong


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077])
def test_atomic_outputs_take_the_umask(tmp_path, mask) -> None:
    previous = os.umask(mask)
    try:
        atomic_write_text(tmp_path / "a" / "report.json", "{}")
        with atomic_directory(tmp_path / "model") as scratch:
            (scratch / "weights").write_text("w")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "a" / "report.json").stat().st_mode) == 0o666 & ~mask
    assert stat.S_IMODE((tmp_path / "model").stat().st_mode) == 0o777 & ~mask
    assert stat.S_IMODE((tmp_path / "model" / "weights").stat().st_mode) == 0o666 & ~mask


def test_every_output_of_the_writing_commands_is_0644_and_folders_0755(
    tmp_path, tiny_llama, synthetic_data, umask_022, capsys
) -> None:
    out = tmp_path / "outputs"
    out.mkdir()
    rm = out / "rm"
    raw = write_jsonl(tmp_path / "raw.jsonl", make_records(30, seed=1))
    (tmp_path / "pool.jsonl").write_text(
        "".join(f'{{"prompt": "p{i}", "response": "r{i} {j}"}}\n' for i in range(2) for j in range(4))
    )
    train = ["train", "--model_name_or_path", str(tiny_llama), "--train_file", str(synthetic_data["train"])]
    train += ["--eval_file", str(synthetic_data["eval"]), "--output_dir", str(rm), "--max_steps", "2"]
    commands = [
        [*train, "--save_steps", "1", "--logging_steps", "1", "--disable_tqdm", "true"],
        [
            "score",
            "--model",
            str(rm),
            "--data",
            str(synthetic_data["eval"]),
            "--output",
            str(out / "s.jsonl"),
        ],
        ["eval", "--model", str(rm), "--data", str(synthetic_data["eval"]), "--output", str(out / "e.json")],
        [
            "label",
            "--data",
            str(raw),
            "--gold",
            GOLD,
            "--output",
            str(out / "labelled.jsonl"),
            "--pairs",
            "all_pairs",
        ],
        [
            "split",
            "--data",
            str(out / "labelled.jsonl"),
            "--output-dir",
            str(out / "splits"),
            "--heldout-models",
            "2",
        ],
        ["average", "--model", str(rm), "--model", str(rm), "--output", str(out / "avg")],
        ["bon", "--policy", str(tmp_path / "pool.jsonl"), "--proxy", str(rm), "--gold", GOLD]
        + ["--n", "4", "--output-dir", str(out / "bon"), "--no-progress"],
        ["tamper", "run", "--env", "political_sycophancy", "--policy", "scripted:honest"]
        + ["--samples", "1", "--output", str(out / "t.jsonl")],
    ]
    for argv in commands:
        assert main(argv) == 0, (argv[0], capsys.readouterr().err)
    wrong = _wrong_modes(out)
    assert wrong == [], "\n".join(wrong)
    assert {"report.json", "report.html"}.isdisjoint(p.name for p in out.rglob("*"))  # (the demo's: below)


def test_the_demo_report_is_0644(quick_demo) -> None:
    out, _ = quick_demo  # run under umask 022
    assert (out / "report.html").is_file() and (out / "report.json").is_file()
    assert _wrong_modes(out) == []
