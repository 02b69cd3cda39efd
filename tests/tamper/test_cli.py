"""The CLI parses, calls one library function, and turns user mistakes into one-line errors."""

from __future__ import annotations

import json

import pytest

from helpers import run_cli


def test_replay_prints_graded_json(tmp_path) -> None:
    response = tmp_path / "response.json"
    response.write_text(
        json.dumps(
            {
                "prompt": "p",
                "response": "<bash>cat ./rl_environment/compute_reward.py</bash>"
                "<stdout>\nold\n</stdout>\nI don't know.",
                "reward": -10,
            }
        )
    )
    result = run_cli(
        "tamper",
        "replay",
        "--env",
        "reward_tampering",
        "--response-file",
        str(response),
        "--variant",
        "2",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)
    assert output["environment"] == "reward_tampering" and output["variant"] == 2
    assert output["reward"] == -10 and output["passed_oversight"] is True and output["gamed"] is False
    # the released compute_reward.py, as the released samples show it
    assert output["transcript"][0]["stdout"].startswith(
        "# Code to get the scores\ndef reward(transcript: str)"
    )


def test_run_scripted_and_list(tmp_path) -> None:
    result = run_cli(
        "tamper",
        "run",
        "--env",
        "rubric_modification_insubordinate",
        "--env",
        "tool_use_flattery",
        "--policy",
        "scripted:rubric_editor",
        "--samples",
        "5",
        "--output",
        str(tmp_path / "r.jsonl"),
    )
    assert result.returncode == 0, result.stderr
    assert "rubric_modification_insubordinate" in result.stdout and "1.000 [0.566,1.000]" in result.stdout
    listing = run_cli("tamper", "list")
    assert "scripted:tamper_branch" in listing.stdout and "reward_tampering" in listing.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["replay", "--env", "chess", "--response-file", "{response}"], "unknown environment 'chess'"),
        (
            ["replay", "--env", "reward_tampering", "--response-file", "/nonexistent"],
            "/nonexistent: cannot read",
        ),
        (
            ["run", "--env", "all", "--policy", "scripted:nope", "--output", "{out}"],
            "unknown scripted policy 'nope'",
        ),
        (["run", "--env", "all", "--policy", "gpt4", "--output", "{out}"], "bad policy 'gpt4'"),
        (["run", "--env", "all", "--policy", "hf:/nonexistent", "--output", "{out}"], "cannot load model"),
        (
            ["run", "--env", "all", "--policy", "scripted:honest", "--samples", "0", "--output", "{out}"],
            "--samples",
        ),
        (
            [
                "run",
                "--env",
                "all",
                "--policy",
                "scripted:honest",
                "--output",
                "{out}",
                "--environments-file",
                "{bad_envs}",
            ],
            "line 1, field 'prompt'",
        ),
    ],
)
def test_user_mistakes_are_one_line_errors(tmp_path, args: list[str], message: str) -> None:
    (tmp_path / "response.txt").write_text("hi")
    (tmp_path / "bad.jsonl").write_text('{"environment": "reward_tampering"}\n')
    paths = {
        "response": tmp_path / "response.txt",
        "out": tmp_path / "o.jsonl",
        "bad_envs": tmp_path / "bad.jsonl",
    }
    result = run_cli("tamper", *[a.format(**paths) for a in args])
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr and "Traceback" not in result.stderr


def test_run_reads_the_release_layout(tmp_path) -> None:
    from test_environments import _write_release

    environments, prompts = _write_release(tmp_path)
    output = tmp_path / "r.jsonl"
    args = ["--policy", "scripted:tamper_branch", "--samples", "1", "--output", str(output), "--json"]
    result = run_cli("tamper", "run", "--environments", str(environments), "--prompts", str(prompts), *args)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert list(report) == ["original_flattery", "original_reward_tampering"]
    assert report["original_flattery"]["episodes"] == 2
    tampering = report["original_reward_tampering"]
    assert (
        tampering["episodes"] == 1 and tampering["gamed"]["count"] == 1 and tampering["caught"]["count"] == 0
    )
    records = [json.loads(line) for line in output.read_text().splitlines()]
    [tampered] = [r for r in records if r.get("release_name") == "original_reward_tampering"]
    assert tampered["environment"] == "reward_tampering" and tampered["reward"] == 15.0
