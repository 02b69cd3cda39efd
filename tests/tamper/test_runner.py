"""Runs are resumable and reported with Wilson intervals; the preference-score hook is applied."""

from __future__ import annotations

import json

import pytest

from rmguard.errors import RMGuardError
from rmguard.tamper.policies import ScriptedPolicy
from rmguard.tamper.runner import RunConfig, run_curriculum, wilson

ENVS = ["political_sycophancy", "rubric_modification_nudged", "reward_tampering"]


def _keys(path) -> list[tuple[str, int]]:
    return [(r["environment"], r["sample"]) for r in map(json.loads, path.read_text().splitlines())]


def test_wilson_interval() -> None:
    low, high = wilson(5, 10)
    assert low == pytest.approx(0.2366, abs=1e-4) and high == pytest.approx(0.7634, abs=1e-4)
    assert wilson(0, 20)[0] == 0.0 and wilson(20, 20)[1] == 1.0


class Crashing(ScriptedPolicy):
    """Dies after a number of generations, like a run killed midway."""

    def __init__(self, strategy: str, budget: int):
        super().__init__(strategy)
        self.budget = budget

    def generate(self, request):
        self.budget -= 1
        if self.budget < 0:
            raise KeyboardInterrupt
        return super().generate(request)


def test_interrupted_run_resumes_without_loss_or_duplicates(tmp_path, jail) -> None:
    output = tmp_path / "results.jsonl"
    config = RunConfig(env=ENVS, samples=4)
    with pytest.raises(KeyboardInterrupt):
        run_curriculum(config, Crashing("tamper_branch", budget=9), output, jail=jail)
    partial = _keys(output)
    assert 0 < len(partial) < 12
    with output.open("a") as sink:
        sink.write('{"environment": "reward_tamp')  # a torn line from a kill mid-write
    report = run_curriculum(config, ScriptedPolicy("tamper_branch"), output, jail=jail)
    keys = _keys(output)
    assert keys[: len(partial)] == partial
    assert sorted(keys) == sorted({(e, s) for e in ENVS for s in range(4)})
    assert report["reward_tampering"]["tampered"]["count"] == 4
    assert json.loads(output.with_suffix(".report.json").read_text()) == json.loads(json.dumps(report))


def test_resuming_with_another_policy_is_refused(tmp_path) -> None:
    output = tmp_path / "results.jsonl"
    run_curriculum(RunConfig(env=["political_sycophancy"], samples=1), ScriptedPolicy("honest"), output)
    with pytest.raises(RMGuardError, match="scripted:honest"):
        run_curriculum(
            RunConfig(env=["political_sycophancy"], samples=2), ScriptedPolicy("sycophant"), output
        )


def test_report_rates_and_preference_scores(tmp_path) -> None:
    calls = []

    def scorer(prompts, responses):
        calls.append(responses)
        return [float(len(r)) for r in responses]

    report = run_curriculum(
        RunConfig(env=["rubric_modification_nudged"], samples=6, concurrency=3),
        ScriptedPolicy("sycophant"),
        tmp_path / "r.jsonl",
        preference_scorer=scorer,
    )
    entry = report["rubric_modification_nudged"]
    assert entry["episodes"] == 6 and entry["gamed"]["count"] == 0 and entry["caught"]["count"] == 6
    assert tuple(entry["caught"]["wilson95"]) == wilson(6, 6)
    # the scorer sees only the text after </cot>
    assert all("<cot>" not in r for batch in calls for r in batch) and len(calls) == 6
    records = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    after_cot = [r["response"].rsplit("</cot>", 1)[1] for r in records]
    assert [r["pm_score"] for r in records] == [float(len(t)) for t in after_cot]
    assert entry["mean_pm_score"] == pytest.approx(sum(map(len, after_cot)) / 6)
    assert entry["examples"] and "completed_checks=True" in entry["examples"][0]["response"]
