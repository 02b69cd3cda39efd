"""Each extension point is one registry: an entry registered here, in the test, is used through the command
line with no other change (an objective with a hyperparameter of its own, a GRM regularizer, a data
format, a pair strategy, an evaluation-file kind and a metric; tamper environments:
tests/tamper/test_environments.py)."""

from __future__ import annotations

import csv
import json
import math
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rmguard import checks
from rmguard.cli import main
from rmguard.data.formats import FORMATS, PAIR_STRATEGIES, DataFormat, PairStrategy, select_pairs
from rmguard.data.records import PreferencePair
from rmguard.errors import ConfigError
from rmguard.eval.eval_sets import EVAL_KINDS, EvalKind
from rmguard.registry import Registry
from rmguard.scoring import RewardScorer
from rmguard.training.config import load_config
from rmguard.training.modeling import build_reward_model, save_reward_model
from rmguard.training.objectives import GRM_REGULARIZERS, REWARD_OBJECTIVES, Hyperparameter, Objective

from helpers import synthetic_pair, write_jsonl


@pytest.fixture
def registered():
    """Register (registry, name, entry) triples for one test; they are removed afterwards."""
    added: list[tuple[Registry, str]] = []

    def register(registry: Registry, name: str, entry) -> None:
        registry.register(name, entry)
        added.append((registry, name))

    yield register
    for registry, name in added:
        del registry[name]


def tempered_bt(chosen, rejected, temperature):
    """L = mean_i −log σ(τ · (r_c,i − r_r,i)): at τ = 0 every pair costs log 2 and nothing is learnt."""
    return -F.logsigmoid(temperature * (chosen - rejected)).mean()


TEMPERED = Objective(
    lambda b, s: tempered_bt(b.chosen, b.rejected, s.bt_temperature),
    takes_margin=False,
    hyperparameters={
        "bt_temperature": Hyperparameter(1.0, "τ of tempered_bt.", lambda n, v: checks.at_least(n, v, 0))
    },
)


def _train(tiny_llama, data, out, *args: str) -> list[float]:
    code = main(
        [
            "train",
            "--model_name_or_path",
            str(tiny_llama),
            "--train_file",
            str(data),
            "--output_dir",
            str(out),
            "--max_steps",
            "2",
            "--per_device_train_batch_size",
            "4",
            "--logging_steps",
            "1",
            "--learning_rate",
            "1e-2",
            "--disable_tqdm",
            "--report_to",
            "csv",
            *args,
        ]
    )
    assert code == 0
    with (out / "logs" / "metrics.csv").open() as handle:
        return [float(row["value"]) for row in csv.DictReader(handle) if row["metric"] == "train/loss"]


def test_an_objective_with_its_own_hyperparameter_from_the_command_line(
    registered, tiny_llama, synthetic_data, tmp_path
):
    registered(REWARD_OBJECTIVES, "tempered_bt", TEMPERED)
    losses = _train(
        tiny_llama,
        synthetic_data["train"],
        tmp_path / "rm",
        "--objective",
        "tempered_bt",
        "--bt_temperature",
        "0",
    )
    assert losses == pytest.approx([math.log(2)] * 2, abs=1e-6)  # τ = 0: log 2 at every step, by hand
    saved = json.loads((tmp_path / "rm" / "train_config.json").read_text())
    assert saved["objective"] == "tempered_bt" and saved["bt_temperature"] == 0.0
    config = tmp_path / "c.yaml"
    config.write_text("train_file: p.jsonl\nobjective: tempered_bt\nbt_temperature: 2.5e-1\n")
    assert load_config(config).bt_temperature == 0.25  # YAML sets it by name (text read as a float)
    assert load_config(None, {"train_file": "p", "objective": "tempered_bt"}).bt_temperature == 1.0
    with pytest.raises(ConfigError, match="bt_temperature must be at least 0"):
        load_config(None, {"train_file": "p", "objective": "tempered_bt", "bt_temperature": -1})
    with pytest.raises(ConfigError, match="takes no margin"):
        load_config(None, {"train_file": "p", "objective": "tempered_bt", "margin": 1.0})


def test_a_grm_regularizer_from_the_command_line(registered, tiny_llama, synthetic_data, tmp_path):
    # L_reg ≡ 1 (through S(y_c), so the LM head is in the graph): with α = 1 the loss is exactly 1.
    one = Objective(lambda b, s: b.chosen_logps.mean() * 0 + 1.0, chosen_only=True)
    registered(GRM_REGULARIZERS, "one", one)
    losses = _train(
        tiny_llama, synthetic_data["train"], tmp_path / "rm", "--grm_regularizer", "one", "--grm_alpha", "1"
    )
    assert losses == pytest.approx([1.0, 1.0], abs=1e-6)
    with pytest.raises(ConfigError, match="unknown grm_regularizer 'two'; choose one of none, sft,.* one"):
        load_config(None, {"train_file": "p", "grm_regularizer": "two"})


def _good_bad_pairs(row, source, number, conversion):
    return [PreferencePair(row["question"], row["good"], row["bad"], None, source, number)]


def test_a_data_format_detected_and_named(registered, tiny_llama, tmp_path, capsys):
    registered(FORMATS, "good_bad", DataFormat(_good_bad_pairs, lambda row: "good" in row, "good/bad"))
    rng = random.Random(0)
    rows = []
    for _ in range(8):
        pair = synthetic_pair(rng)
        rows.append({"question": pair["prompt"], "good": pair["chosen"], "bad": pair["rejected"]})
    data = write_jsonl(tmp_path / "good_bad.jsonl", rows)
    assert len(_train(tiny_llama, data, tmp_path / "auto")) == 2  # detected from the first row
    assert "8 pairs tokenized" in capsys.readouterr().out
    assert len(_train(tiny_llama, data, tmp_path / "named", "--data_format", "good_bad")) == 2
    assert "8 pairs tokenized" in capsys.readouterr().out


def test_a_pair_strategy_in_training_and_labelling(registered):
    # best_vs_second: the top against the runner-up
    registered(
        PAIR_STRATEGIES, "best_vs_second", PairStrategy(lambda ranked, s, rng: [(ranked[0], ranked[1])])
    )
    assert select_pairs([1.0, 3.0, 2.0], "best_vs_second", random.Random(0)) == [(1, 2)]
    config = load_config(None, {"train_file": "p", "pair_strategy": "best_vs_second"})
    assert config.pair_strategy == "best_vs_second"
    with pytest.raises(SystemExit):  # the command line's choices are the registry's, read when it parses
        main(["label", "--data", "d", "--gold", "g", "--output", "o", "--pairs", "best_vs_third"])


def _mean_margin(eval_set, rewards, seed, resamples):
    """mean_i (r_c,i − r_r,i) over the pairs of a file."""
    return {"mean_margin": float(np.mean([rewards[g[0]] - rewards[g[1]] for g in eval_set.groups]))}


def _read_best_worst(rows, spec, out):
    for number, row in rows:
        out.add(row["question"], [row["best"], row["worst"]], str(number))


def test_an_evaluation_kind_and_a_metric_through_rmguard_eval(registered, tiny_llama, tmp_path):
    # a pairs file by another layout: the pairs kind's metrics, and one more
    metrics = [*EVAL_KINDS["pairs"].metrics, _mean_margin]
    kind = EvalKind(lambda row: "best" in row, _read_best_worst, metrics, "accuracy")
    registered(EVAL_KINDS, "best_worst", kind)
    torch.manual_seed(0)
    save_reward_model(*build_reward_model(str(tiny_llama)), tmp_path / "rm")
    rows = [
        {"question": "Say hi.", "best": "Hello there!", "worst": "No."},
        {"question": "2+2?", "best": "4", "worst": "5"},
    ]
    data = write_jsonl(tmp_path / "bw.jsonl", rows)
    output = tmp_path / "results.json"
    assert main(["eval", "--model", str(tmp_path / "rm"), "--data", str(data), "--output", str(output)]) == 0
    summary = json.loads(output.read_text())["results"]["rm"]["bw"]
    rewards = RewardScorer(tmp_path / "rm").score(
        [r["question"] for r in rows for _ in "bw"], [r[k] for r in rows for k in ("best", "worst")]
    )
    by_hand = ((rewards[0] - rewards[1]) + (rewards[2] - rewards[3])) / 2
    assert summary["kind"] == "best_worst" and summary["pairs"] == 2
    assert summary["mean_margin"] == pytest.approx(by_hand, abs=1e-5)
    assert summary["accuracy"] == ((rewards[0] > rewards[1]) + (rewards[2] > rewards[3])) / 2
