"""One writer per output: a second real process is refused with one line; a killed owner's lock is stale."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from helpers import REPO, run_cli, run_tamper

HOLD = """
import sys, time
from rmguard.fileio import output_lock
with output_lock(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(120)
"""


@pytest.fixture
def holder(tmp_path):
    """A real process holding the lock of a path until it is killed (with SIGKILL, as a crash would)."""
    processes = []

    def hold(target) -> subprocess.Popen:
        env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
        process = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(target)], stdout=subprocess.PIPE, env=env, text=True
        )
        assert process.stdout.readline().strip() == "locked"
        processes.append(process)
        return process

    yield hold
    for process in processes:
        process.kill()
        process.wait()


def _one_line_refusal(result, target) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "is being written by pid" in lines[0] and str(target) in lines[0]


def test_second_tamper_run_is_refused_and_a_killed_owner_is_stale(holder, tmp_path) -> None:
    output = tmp_path / "episodes.jsonl"
    args = ["tamper", "run", "--env", "political_sycophancy", "--policy", "scripted:honest", "--samples", "2"]
    owner = holder(output)
    result = run_cli(*args, "--output", str(output), cwd=tmp_path)
    _one_line_refusal(result, output)
    assert not output.exists()
    owner.send_signal(signal.SIGKILL)
    owner.wait()
    result = run_cli(*args, "--output", str(output), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(output.read_text().splitlines()) == 2


def test_second_training_run_on_one_output_dir_is_refused(holder, synthetic_data, tmp_path) -> None:
    output_dir = tmp_path / "rm"
    holder(output_dir)
    result = run_cli("train", "--train_file", str(synthetic_data["train"]), "--output_dir", str(output_dir))
    _one_line_refusal(result, output_dir)
    assert not output_dir.exists()


def test_tamper_output_that_is_not_a_results_file_is_left_untouched(tmp_path) -> None:
    environments = tmp_path / "environments.json"
    environments.write_text(json.dumps({"original_reward_tampering": {"dirs": [], "files": {}}}, indent=2))
    before = environments.read_bytes()
    result = run_tamper("political_sycophancy", "scripted:honest", environments)
    assert result.returncode == 2 and "not a results record" in result.stderr
    assert environments.read_bytes() == before
