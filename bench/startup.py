"""Whole-process start-up of the command line: `rmguard --help`, a sub-command's --help, a usage mistake and
a refused bad input, each started as a fresh `python -m rmguard` process several times.

    python bench/startup.py [--runs 7]

The bar (issue 40): each under one second on a quiet machine. Timings are printed, never asserted; quote the
median. The tests check what makes it hold (tests/cli/test_startup.py: no ML library is imported).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
CASES = {
    "rmguard --help": ["--help"],
    "rmguard train --help": ["train", "--help"],
    "usage mistake (bon --n 0)": ["bon", "--n", "0"],
    "refused bad input (train, missing data file)": ["train", "--train_file", "missing.jsonl"],
    "refused bad input (train, out-of-range setting)": [
        "train",
        "--train_file",
        "p.jsonl",
        "--learning_rate",
        "-1",
    ],
}


def wall_times(argv: list[str], runs: int, folder: str) -> list[float]:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    times = []
    for _ in range(runs + 1):  # the first run warms the file cache and is not counted
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "rmguard", *argv], cwd=folder, env=env, capture_output=True)
        times.append(time.perf_counter() - start)
    return times[1:]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "p.jsonl").write_text('{"prompt": "p", "chosen": "a", "rejected": "b"}\n')
        print(f"{'case':<50} {'min':>6} {'median':>7} {'max':>6}  (s, whole process, {args.runs} runs)")
        for name, argv in CASES.items():
            times = wall_times(argv, args.runs, folder)
            print(f"{name:<50} {min(times):6.2f} {statistics.median(times):7.2f} {max(times):6.2f}")


if __name__ == "__main__":
    main()
