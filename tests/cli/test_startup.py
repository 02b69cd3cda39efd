"""The command line answers --help, usage mistakes and refused files before importing the ML stack: building
the parser (every sub-command's options, from the config dataclasses) imports neither torch nor transformers.
How long it takes is measured by bench/startup.py, not asserted here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
HEAVY = ("torch", "transformers", "accelerate", "trl", "datasets", "matplotlib", "scipy")

PROBE = """
import sys
from rmguard.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as stop:
    code = stop.code
print("imported:", *sorted({name.split(".")[0] for name in sys.modules} & set(HEAVY)))
"""


def _imported(*argv: str, cwd: Path | None = None) -> tuple[list[str], str]:
    result = subprocess.run(
        [sys.executable, "-c", f"HEAVY = {HEAVY!r}\n{PROBE}", *argv],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("imported:"), result.stderr
    return last.split()[1:], result.stderr


def test_building_the_parser_imports_no_ml_library() -> None:
    code = f"HEAVY = {HEAVY!r}\nimport sys\nfrom rmguard.cli import build_parser\nbuild_parser()\n"
    code += "print(sorted({name.split('.')[0] for name in sys.modules} & set(HEAVY)))"
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(SRC)},
        timeout=120,
    )
    assert result.stdout.strip() == "[]", result.stderr


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--help"], ""),
        (["train", "--help"], ""),
        (["tamper", "run", "--help"], ""),
        (["bon", "--n", "0"], "error:"),
        (["train", "--config", "missing.yaml"], "missing.yaml: no such config file"),
        (["train", "--train_file", "missing.jsonl"], "missing.jsonl: no such file or folder"),
        (["train", "--train_file", "p.jsonl", "--learning_rate", "-1"], "learning_rate"),
    ],
)
def test_help_usage_errors_and_refused_files_import_no_ml_library(argv, message, tmp_path) -> None:
    (tmp_path / "p.jsonl").write_text('{"prompt": "p", "chosen": "a", "rejected": "b"}\n')
    imported, stderr = _imported(*argv, cwd=tmp_path)
    assert imported == [] and message in stderr, (imported, stderr)
