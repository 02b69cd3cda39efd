"""Numeric settings out of range stop a run with one line naming the setting: never numbers from nowhere.

Each CLI case runs ``python -m rmguard`` as a user does and checks: exit status 2, one line on stderr that
names the option, no traceback, and no output file. The library cases check that the same rules hold for
Python callers (config dataclasses and the scorer), where the CLI is not in the way.
"""

from __future__ import annotations

import math

import pytest

from rmguard.errors import ConfigError
from rmguard.overopt.bon import BonConfig
from rmguard.overopt.generation import SamplingConfig
from rmguard.scoring import RewardScorer
from rmguard.tamper.protocol import EpisodeConfig
from rmguard.training.config import load_config

from helpers import run_cli

BON = ["bon", "--policy", "P", "--proxy", "X", "--gold", "G", "--output-dir", "OUT"]
# (sub-command arguments with OUT standing for the output path, the option the message must name)
CLI_CASES = [
    (["score", "--model", "M", "--data", "D", "--output", "OUT", "--batch-size", "-1"], "--batch-size"),
    (["score", "--model", "M", "--data", "D", "--output", "OUT", "--batch-size", "0"], "--batch-size"),
    (["score", "--model", "M", "--data", "D", "--output", "OUT", "--max-length", "-5"], "--max-length"),
    (["eval", "--model", "M", "--data", "D", "--output", "OUT", "--batch-size", "-1"], "--batch-size"),
    (["eval", "--model", "M", "--data", "D", "--output", "OUT", "--bootstrap", "0"], "--bootstrap"),
    (["label", "--data", "D", "--gold", "G", "--output", "OUT", "--batch-size", "-1"], "--batch-size"),
    (["label", "--data", "D", "--gold", "G", "--output", "OUT", "--label-noise", "1.5"], "--label-noise"),
    ([*BON, "--score-batch-size", "-1"], "--score-batch-size"),
    ([*BON, "--top-p", "0"], "--top-p"),
    ([*BON, "--temperature", "nan"], "--temperature"),
    (["diagnose", "--model", "M", "--data", "D", "--output-dir", "OUT", "--max-pairs", "0"], "--max-pairs"),
    (["split", "--data", "D", "--output-dir", "OUT", "--heldout-prompts", "-0.1"], "--heldout-prompts"),
    (["tamper", "run", "--policy", "scripted:honest", "--output", "OUT", "--samples", "-3"], "--samples"),
    (["train", "--objective", "nonsense"], "objective"),
    (["train", "--data_format", "bogus"], "--data_format"),
    (["train", "--learning_rate", "-1", "--train_file", "D"], "learning_rate"),
]


@pytest.mark.parametrize("args, option", CLI_CASES, ids=[" ".join(a[:1] + a[-2:]) for a, _ in CLI_CASES])
def test_out_of_range_option_is_one_line(args: list[str], option: str, tmp_path) -> None:
    out = tmp_path / "out"
    result = run_cli(*[str(out) if a == "OUT" else a for a in args], cwd=tmp_path, timeout=120)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and option in lines[0] and "Traceback" not in result.stderr, result.stderr
    assert not out.exists()


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"learning_rate": math.nan}, "learning_rate"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"num_train_epochs": 0.0}, "num_train_epochs"),
        ({"warmup_ratio": 1.5}, "warmup_ratio"),
        ({"label_smoothing": -0.1}, "label_smoothing"),
        ({"logging_steps": 0}, "logging_steps"),
        ({"lora_r": 0}, "lora_r"),
        ({"per_device_train_batch_size": -1}, "per_device_train_batch_size"),
    ],
)
def test_train_config_rejects_out_of_range_numbers(overrides: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        load_config(None, {"train_file": "pairs.jsonl", **overrides})


def test_epochs_may_be_zero_when_max_steps_is_set() -> None:
    assert (
        load_config(None, {"train_file": "p.jsonl", "num_train_epochs": 0.0, "max_steps": 3}).max_steps == 3
    )


@pytest.mark.parametrize(
    "build, field",
    [
        (lambda: SamplingConfig(temperature=0.0), "temperature"),
        (lambda: SamplingConfig(top_p=0.0), "top_p"),
        (lambda: SamplingConfig(batch_size=-1), "batch_size"),
        (lambda: BonConfig("p", ["x"], "g", "o", score_batch_size=-1), "score_batch_size"),
        (lambda: BonConfig("p", ["x"], "g", "o", n=0), "n"),
        (lambda: EpisodeConfig(max_commands=0), "max_commands"),
    ],
)
def test_python_configs_reject_out_of_range_numbers(build, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        build()


def test_scorer_refuses_a_negative_batch_size_before_loading(tiny_llama) -> None:
    with pytest.raises(ConfigError, match="batch_size"):
        RewardScorer("no-such-folder", batch_size=-1)


@pytest.mark.parametrize("command", ["score", "eval", "label"])
@pytest.mark.parametrize("through_link", [False, True])
def test_output_equal_to_input_is_refused_and_the_input_kept(
    command: str, through_link: bool, tmp_path
) -> None:
    data = tmp_path / "data.jsonl"
    data.write_text('{"prompt": "p", "chosen": "a", "rejected": "b"}\n')
    before = data.read_bytes()
    output = data
    if through_link:
        output = tmp_path / "link.jsonl"
        output.symlink_to(data)
    source = {"score": ["--model", "M"], "eval": ["--model", "M"], "label": ["--gold", "G"]}[command]
    result = run_cli(command, *source, "--data", str(data), "--output", str(output), cwd=tmp_path)
    assert result.returncode == 2 and "is the input" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert data.read_bytes() == before


def test_merge_into_its_own_adapter_folder_is_refused(tmp_path) -> None:
    from rmguard.training.modeling import merge_lora

    with pytest.raises(ConfigError, match="is the input"):
        merge_lora(tmp_path, tmp_path / ".." / tmp_path.name)


@pytest.fixture
def reward_model_folder(tmp_path):
    folder = tmp_path / "rm"
    folder.mkdir()
    (folder / "config.json").write_text(
        '{"architectures": ["LlamaForSequenceClassification"], "num_labels": 1}'
    )
    return folder


def test_reward_model_or_empty_folder_is_refused_as_a_policy(reward_model_folder, tmp_path) -> None:
    from rmguard.overopt.generation import load_policy
    from rmguard.tamper.policies import HFPolicy

    for load in (load_policy, HFPolicy):
        with pytest.raises(ConfigError, match="a reward model .*not a policy"):
            load(str(reward_model_folder))
        with pytest.raises(ConfigError, match="no model here"):
            load(str(tmp_path))


def test_tamper_run_refuses_a_reward_model_policy(reward_model_folder, tmp_path) -> None:
    out = tmp_path / "episodes.jsonl"
    result = run_cli(
        "tamper",
        "run",
        "--env",
        "political_sycophancy",
        "--policy",
        f"hf:{reward_model_folder}",
        "--output",
        str(out),
        cwd=tmp_path,
    )
    assert result.returncode == 2 and "not a policy" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not out.exists()


def test_unreadable_inputs_and_unwritable_outputs_are_one_line(tmp_path) -> None:
    (tmp_path / "latin1.jsonl").write_bytes(b'{"prompt": "p", "chosen": "caf\xe9", "rejected": "b"}\n')
    (tmp_path / "ok.jsonl").write_text('{"prompt": "p", "chosen": "a", "rejected": "b"}\n')
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("not json")
    (tmp_path / "a_file").write_text("")
    (tmp_path / "a_folder").mkdir()
    cases = [
        (
            ["--model", "model", "--data", "latin1.jsonl", "--output", "o.jsonl"],
            "latin1.jsonl, line 1: not UTF-8",
        ),
        (
            ["--model", "model", "--data", "ok.jsonl", "--output", "o.jsonl"],
            "config.json, line 1: not valid JSON",
        ),
        (["--model", "model", "--data", "ok.jsonl", "--output", "a_file/o.jsonl"], "a_file is a file"),
        (["--model", "model", "--data", "ok.jsonl", "--output", "a_folder"], "a_folder: it is a folder"),
        (
            ["--model", "model", "--data", "ok.jsonl", "--output", "/proc/o.jsonl"],
            "cannot write /proc/o.jsonl",
        ),
    ]
    for args, message in cases:
        result = run_cli("score", *args, cwd=tmp_path)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and message in lines[0], result.stderr
    assert not (tmp_path / "o.jsonl").exists()


@pytest.mark.parametrize(
    "body, message",
    [
        ("raise KeyError('x')", "raised KeyError"),
        ("return 'high'", "returned 'high'"),
        ("return float('nan')", "nan"),
    ],
)
def test_gold_functions_that_fail_are_one_line(body: str, message: str, tmp_path) -> None:
    from rmguard.overopt.gold import GoldScorer

    (tmp_path / "gold_fn.py").write_text(f"def gold(prompt, response):\n    {body}\n")
    with pytest.raises(ConfigError, match=f"gold function .*{message}.*item 1"):
        GoldScorer(f"{tmp_path / 'gold_fn.py'}:gold").score(["p"], ["r"])
