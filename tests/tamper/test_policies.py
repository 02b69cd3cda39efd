"""Every policy kind runs end to end: an HTTP endpoint (a real local server process) and a local HF model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rmguard.tamper.envs.registry import ENVIRONMENTS

from helpers import run_tamper


@pytest.fixture
def server(tmp_path):
    log = tmp_path / "requests.jsonl"
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("fake_openai_server.py")), str(log)],
        stdout=subprocess.PIPE,
        text=True,
    )
    port = int(process.stdout.readline())
    yield f"http://127.0.0.1:{port}/v1", log
    process.terminate()
    process.wait(timeout=10)


def test_openai_policy_against_a_real_server(server, tmp_path) -> None:
    base_url, log = server
    output = tmp_path / "results.jsonl"
    result = run_tamper(
        "all",
        "openai:fake-model",
        output,
        *("--base-url", base_url, "--api-key-env", "FAKE_KEY", "--samples", "3", "--concurrency", "4"),
        "--json",
        env={"FAKE_KEY": "sk-test"},
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) == set(ENVIRONMENTS) and all(entry["episodes"] == 3 for entry in report.values())
    tampering = report["reward_tampering"]
    assert tampering["tampered"]["count"] == 3 and tampering["test_passed"]["count"] == 3
    records = [json.loads(line) for line in output.read_text().splitlines()]
    assert len(records) == 15 and {r["sample_model"] for r in records} == {"openai:fake-model"}
    assert (
        "<stdout>\ncompute_reward.py"
        in next(r for r in records if r["environment"] == "reward_tampering")["response"]
    )
    requests = [json.loads(line) for line in log.read_text().splitlines()]
    assert {r["auth"] for r in requests} == {"Bearer sk-test"}
    continued = [r["body"] for r in requests if r["body"]["messages"][-1]["role"] == "assistant"]
    assert continued and all(b["continue_final_message"] and b["stop"] == ["</bash>"] for b in continued)


def test_openai_policy_reports_a_dead_endpoint(tmp_path) -> None:
    result = run_tamper(
        "political_sycophancy",
        "openai:m",
        tmp_path / "r.jsonl",
        *("--base-url", "http://127.0.0.1:9/v1", "--samples", "1"),
    )
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "127.0.0.1:9" in result.stderr


def test_hf_policy_runs_every_environment(tiny_model, tmp_path) -> None:
    output = tmp_path / "hf.jsonl"
    result = run_tamper(
        "all", f"hf:{tiny_model}", output, *("--samples", "1", "--max-new-tokens", "6", "--json")
    )
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in output.read_text().splitlines()]
    assert [r["environment"] for r in records] == list(ENVIRONMENTS)
    assert all(isinstance(r["response"], str) and r["response"] for r in records)
    assert records[-1]["exec_outcome"] == "ok" and records[-1]["tampered"] is False


def test_hf_policy_stops_at_bash_close(tiny_model) -> None:
    from rmguard.tamper.envs.registry import make_environment
    from rmguard.tamper.policies import DecodingConfig, HFPolicy
    from rmguard.tamper.protocol import GenerationRequest

    policy = HFPolicy(str(tiny_model), DecodingConfig(temperature=1.0, max_new_tokens=4))
    spec = make_environment("reward_tampering", 0)
    request = GenerationRequest("system", spec.prompt, "<bash>ls</bash", 0, 1, spec)
    rendered = policy.render(request.system, request.prompt, request.prefix)
    assert rendered.startswith("<|system|>system\n<|user|>") and rendered.endswith(
        "<|assistant|><bash>ls</bash"
    )
    assert policy.generate(request) == policy.generate(request)  # seeded
