"""Bad input stops a run with one line naming the file, row, field or option: never a traceback, never
numbers from nowhere, never a touched input.

The table (``tests/bad_input_table.py``) covers every category of issue 12's "one clear line" list and its
neighbours, for every sub-command. Each case is its own test: ``pytest tests/cli/test_bad_inputs.py -k
eval_latin_1_JSONL`` runs the case named ``eval: latin-1 JSONL`` alone. It runs the CLI's entry point
(``rmguard.cli.main``, what ``python -m rmguard`` calls) in a process of its own, forked by a case server
that has imported the libraries once (``tests/cli_cases.py``, the ``cli`` fixture); the process's own stderr is captured, so
library log lines count too. Checks per case: exit status 2, exactly one stderr line that starts
``rmguard <command>: error:`` and holds the expected text, no traceback, no new file or folder, and every
input byte-identical. Other tests here run ``python -m rmguard`` itself or the library, where the CLI is
not in the way.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from rmguard.errors import ConfigError
from rmguard.overopt.bon import BonConfig
from rmguard.overopt.generation import SamplingConfig
from rmguard.scoring import RewardScorer
from rmguard.tamper.protocol import EpisodeConfig
from rmguard.training.config import load_config

from bad_input_table import CASES
from helpers import run_tamper


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
    cli, command: str, through_link: bool, tmp_path
) -> None:
    data = tmp_path / "data.jsonl"
    data.write_text('{"prompt": "p", "chosen": "a", "rejected": "b"}\n')
    before = data.read_bytes()
    output = data
    if through_link:
        output = tmp_path / "link.jsonl"
        output.symlink_to(data)
    source = {"score": ["--model", "M"], "eval": ["--model", "M"], "label": ["--gold", "G"]}[command]
    result = cli(command, *source, "--data", str(data), "--output", str(output), cwd=tmp_path)
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
    result = run_tamper("political_sycophancy", f"hf:{reward_model_folder}", out, cwd=tmp_path)
    assert result.returncode == 2 and "not a policy" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not out.exists()


def test_score_cuts_at_the_models_length_by_default(cli, tiny_llama, tmp_path) -> None:
    # a response longer than max_position_embeddings (256 here) is one line naming its row, not a huge forward
    from rmguard.training.modeling import build_reward_model, save_reward_model

    save_reward_model(*build_reward_model(str(tiny_llama)), tmp_path / "rm")
    data = tmp_path / "d.jsonl"
    rows = [{"prompt": "p", "response": "short"}, {"prompt": "p", "response": " a" * 600}]
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    result = cli(
        "score", "--model", str(tmp_path / "rm"), "--data", str(data), "--output", str(tmp_path / "o")
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert (
        result.stderr.count("\n") == 1
        and "line 2" in result.stderr
        and "longer than max_length 256" in result.stderr
    )
    assert not (tmp_path / "o").exists()
    assert RewardScorer(tmp_path / "rm").max_length == 256


@pytest.mark.parametrize(
    "body, message",
    [
        ("raise KeyError('x')", "raised KeyError"),
        ("return 'high'", "returned 'high'"),
        ("return float('nan')", "nan"),
    ],
)
def test_gold_functions_that_fail_are_one_line(body: str, message: str, tmp_path) -> None:
    from rmguard.gold import GoldScorer

    (tmp_path / "gold_fn.py").write_text(f"def gold(prompt, response):\n    {body}\n")
    with pytest.raises(ConfigError, match=f"gold function .*{message}.*item 1"):
        GoldScorer(f"{tmp_path / 'gold_fn.py'}:gold").score(["p"], ["r"])


# ----------------------------------------------------------------------------------------------- the table


def _snapshot(folder: Path) -> dict[str, bytes | None]:
    return {
        str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(folder.rglob("*"))
    }


def case_id(name: str) -> str:
    """A case's test id, one word for ``pytest -k``: ``eval: latin-1 JSONL`` → ``eval_latin_1_JSONL``."""
    return re.sub(r"\W+", "_", name).strip("_")


@pytest.mark.parametrize("name, args, files, expect", [pytest.param(*c, id=case_id(c[0])) for c in CASES])
def test_bad_input_is_one_clear_line(name, args, files, expect, cli, tmp_path) -> None:
    folder = tmp_path / "case"
    folder.mkdir()
    for relative, content in files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    before = _snapshot(folder)
    result = cli.run(folder, args)
    lines = result["stderr"].strip().splitlines()
    assert "Traceback" not in result["stderr"], result["stderr"]
    assert result["rc"] == 2, result
    assert len(lines) == 1 and lines[0].startswith("rmguard") and " error: " in lines[0], result["stderr"]
    assert expect in lines[0], lines[0]
    assert _snapshot(folder) == before, "an output was written or an input changed"
