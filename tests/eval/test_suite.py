"""``rmguard eval --suite standard`` on a folder holding every set under its official name, with a tiny
random-init reward model loaded through the real loading code."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from rmguard.cli import main
from rmguard.data.formats import as_reply, as_user_turn
from rmguard.eval.suite import SUITES
from rmguard.scoring import RewardScorer
from rmguard.training.modeling import build_reward_model, save_reward_model

import benchmark_rows as rows


@pytest.fixture(scope="module")
def reward_model(tiny_llama, tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("rm") / "rm"
    save_reward_model(*build_reward_model(str(tiny_llama)), path)
    return path


def _suite(model: Path, data: Path, output: Path, *extra: str) -> dict:
    argv = [
        "eval",
        "--suite",
        "standard",
        "--model",
        str(model),
        "--data-dir",
        str(data),
        "--output",
        str(output),
    ]
    assert main([*argv, "--bootstrap", "50", *extra]) == 0
    return json.loads(output.read_text())


def test_every_benchmark_found_scored_and_tabled(reward_model, tmp_path, capsys):
    data = rows.standard_folder(tmp_path / "data")
    report = _suite(reward_model, data, tmp_path / "suite.json")
    assert set(report["present"]) == set(SUITES["standard"]) and report["absent"] == {}
    results = report["results"]["rm"]
    table = capsys.readouterr().out
    for benchmark in SUITES["standard"].values():
        assert f"| {benchmark.title}" in table
    assert table == report["table"] + "\n"

    # JudgeBench from the model's own rewards: correct when the labelled winner scores strictly higher
    pairs = rows.judgebench()
    scorer = RewardScorer(reward_model)
    prompts = [as_user_turn(p["question"]) for p in pairs for _ in "AB"]
    rewards = np.array(scorer.score(prompts, [as_reply(p[f"response_{s}"]) for p in pairs for s in "AB"]))
    a, b = rewards[0::2], rewards[1::2]
    by_hand = np.mean([(x > y) if p["label"] == "A>B" else (y > x) for x, y, p in zip(a, b, pairs)])
    (judgebench,) = results["judgebench"]
    assert judgebench["value"] == pytest.approx(by_hand)
    assert judgebench["ci_low"] <= judgebench["value"] <= judgebench["ci_high"]
    assert set(judgebench["subsets"]) >= {"macro average", "one order (--single_game)", "livecodebench"}

    assert report["details"]["rm"]["rmb"]["BoN"]["scenarios"]["BoN_set/Harmlessness/S1"]["records"] == 2
    assert len(report["details"]["rm"]["ppe_correctness"]["MATH"]["best_of_k_curve"]) == 4
    (rmb,) = results["rmb"]
    assert set(rmb["subsets"]) == {
        "Harmlessness BoN",
        "Harmlessness pairwise",
        "Helpfulness BoN",
        "Helpfulness pairwise",
    }
    assert rmb["value"] == pytest.approx(np.mean(list(rmb["subsets"].values())))
    (ppe,) = results["ppe_correctness"]
    assert set(ppe["subsets"]) == {"MATH accuracy", "MATH best-of-4", "GPQA accuracy", "GPQA best-of-4"}
    (reword,) = results["rewordbench"]
    assert reword["label"] == "reWordBench"
    assert reword["subsets"]["add_quotes drop"] == pytest.approx(
        reword["subsets"]["original accuracy"] - reword["subsets"]["add_quotes accuracy"]
    )
    (rewardbench,) = results["rewardbench"]
    assert set(rewardbench["subsets"]) == {"Chat", "Chat Hard", "Safety", "Reasoning"}
    assert rewardbench["value"] == pytest.approx(np.mean(list(rewardbench["subsets"].values())))


def test_absent_sets_are_noted_and_rules_stand_in_for_rewordbench(reward_model, tmp_path, capsys):
    data = rows.standard_folder(tmp_path / "data", skip=("rmb", "ppe_correctness", "rewordbench", "rmbench"))
    report = _suite(reward_model, data, tmp_path / "suite.json", "--rewordbench-rules")
    assert set(report["absent"]) == {"RMB", "PPE correctness", "RM-Bench"}
    assert "| RMB | absent (looked for **/RMB_dataset/Pairwise_set/**/*.json) |" in capsys.readouterr().out
    (reword,) = report["results"]["rm"]["rewordbench"]
    assert reword["label"] == "reWordBench (rmguard's rule-based transformations)"
    assert {"add_quotes drop", "punct_spaces drop", "stress_test drop", "answer_header drop"} <= set(
        reword["subsets"]
    )


def test_a_malformed_row_stops_the_suite_with_one_line(reward_model, tmp_path, capsys):
    data = rows.standard_folder(tmp_path / "data", skip=("rmb",))
    bad = data / "RMB_dataset/BoN_set/Harmlessness/S2.json"
    bad.parent.mkdir(parents=True)
    bad.write_text(json.dumps([{**rows.rmb_bon("Harmlessness/S2", 1)[0], "bon_best": {"llm_name": "m"}}]))
    argv = ["eval", "--suite", "standard", "--model", str(reward_model), "--data-dir", str(data)]
    assert main(argv) != 0
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"{bad}, line 1, field 'bon_best.answer'" in err


@pytest.mark.parametrize(
    ("argv", "expect"),
    [
        (["--suite", "standard"], "--data-dir"),
        (["--suite", "standard", "--data-dir", "D", "--data", "x.jsonl"], "either --data"),
        ([], "either --data"),
        (["--suite", "bogus", "--data-dir", "D"], "unknown suite 'bogus'"),
        (["--suite", "standard", "--data-dir", "nowhere"], "nowhere: no such folder"),
    ],
)
def test_suite_options_refused_in_one_line(argv, expect, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "D").mkdir()
    assert main(["eval", "--model", "M", *argv]) != 0
    err = capsys.readouterr().err.strip()
    assert expect in err and "\n" not in err


def test_an_empty_folder_says_what_it_looked_for(tmp_path, capsys):
    assert main(["eval", "--model", "M", "--suite", "standard", "--data-dir", str(tmp_path)]) != 0
    assert "no benchmark set found under its official name" in capsys.readouterr().err


def test_a_file_of_another_benchmark_in_a_set_folder_is_one_line(tmp_path, capsys):
    folder = tmp_path / "PPE-Human-Preference-V1" / "data"
    folder.mkdir(parents=True)
    wrong = folder / "test.jsonl"
    wrong.write_text("".join(json.dumps(r) + "\n" for r in rows.judgebench(2)))
    assert main(["eval", "--model", "M", "--suite", "standard", "--data-dir", str(tmp_path)]) != 0
    err = capsys.readouterr().err.strip()
    assert f"{wrong}: read as a judgebench file, but PPE human preference files are ppe_preference" in err


def test_two_models_share_one_table(reward_model, tiny_llama, tmp_path):
    torch.manual_seed(1)
    other = tmp_path / "other"
    save_reward_model(*build_reward_model(str(tiny_llama)), other)
    data = rows.standard_folder(tmp_path / "data", skip=tuple(set(SUITES["standard"]) - {"judgebench"}))
    output = tmp_path / "suite.json"
    argv = ["eval", "--suite", "standard", "--model", str(reward_model), "--model", str(other)]
    assert main([*argv, "--data-dir", str(data), "--output", str(output), "--bootstrap", "20"]) == 0
    report = json.loads(output.read_text())
    assert list(report["results"]) == ["rm", "other"]
    assert report["table"].splitlines()[0] == "| benchmark | number | rm | other |"
    judgebench = report["table"].splitlines()[2]
    assert judgebench.startswith("| JudgeBench (gpt-4o-2024-05-13) | official average (micro) | ")
