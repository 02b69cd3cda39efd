"""One writer per output: a second real process is refused with one line; a killed owner's lock is stale."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from rmguard.errors import ConfigError
from rmguard.fileio import output_lock

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


# Commands that write a resumable output folder, with the files they need to reach their lock.
FOLDER_COMMANDS = {
    "bon": (["bon", "--policy", "P", "--proxy", "X", "--gold", "G", "--output-dir"], {}),
    "rloo": (
        ["rloo", "--policy", "P", "--prompts", "p.jsonl", "--proxy", "X", "--gold", "G", "--output-dir"],
        {"p.jsonl": '{"prompt": "p"}\n'},
    ),
    "study": (["study", "--config", "s.yaml", "--output-dir"], {"s.yaml": "seeds: [0]\n"}),
}


@pytest.mark.parametrize("command", sorted(FOLDER_COMMANDS))
def test_a_second_writer_of_an_output_folder_is_refused(command, holder, cli, tmp_path) -> None:
    args, files = FOLDER_COMMANDS[command]
    for name, content in files.items():
        (tmp_path / name).write_text(content)
    output = tmp_path / "out"
    holder(output)
    result = cli(*args, str(output), cwd=tmp_path)
    _one_line_refusal(result, output)
    assert not output.exists()


def test_the_lock_file_goes_with_its_owner_and_a_stale_one_is_taken_over(tmp_path) -> None:
    target = tmp_path / "out"
    lock = tmp_path / "out.lock"
    with output_lock(target):
        assert "pid" in lock.read_text()
        with pytest.raises(ConfigError, match="is being written by pid"), output_lock(target):
            pass  # a second holder in the same process is refused too (flock is per open file)
        assert lock.exists()  # the refused one does not remove the owner's lock
    assert not lock.exists()
    with pytest.raises(RuntimeError), output_lock(target):
        raise RuntimeError("the run failed")
    assert not lock.exists()
    lock.write_text("pid 1 on a killed run")  # left by a killed owner: nobody holds it
    with output_lock(target):
        assert str(os.getpid()) in lock.read_text()
    assert not lock.exists()


def test_tamper_output_that_is_not_a_results_file_is_left_untouched(tmp_path) -> None:
    environments = tmp_path / "environments.json"
    environments.write_text(json.dumps({"original_reward_tampering": {"dirs": [], "files": {}}}, indent=2))
    before = environments.read_bytes()
    result = run_tamper("political_sycophancy", "scripted:honest", environments)
    assert result.returncode == 2 and "not a results record" in result.stderr
    assert environments.read_bytes() == before
