"""Training prints each logging_steps line (loss, accuracy, learning rate) and each evaluation's metrics, as
TRL's console does (a dict, floats to 4 significant digits), and the CSV log holds the same numbers."""

from __future__ import annotations

import ast

from rmguard.training.config import load_config
from rmguard.training.tracking import console_line
from rmguard.training.trainer import train


def test_console_line_uses_trl_names() -> None:
    line = console_line(
        5, 40, {"train/loss": 0.693147, "train/lr": 2e-5, "train/accuracy": 0.625, "eval/pairs": 8}
    )
    assert (
        line
        == "{'step': '5/40', 'loss': '0.6931', 'learning_rate': '2e-05', 'accuracy': '0.625', 'eval_pairs': 8}"
    )


def test_training_prints_every_logged_step_and_evaluation(
    tiny_llama, synthetic_data, tmp_path, capsys
) -> None:
    data = {"train_file": str(synthetic_data["train"]), "eval_file": str(synthetic_data["eval"])}
    steps = {"max_steps": 4, "logging_steps": 2, "eval_steps": 3, "disable_tqdm": True, "report_to": ["csv"]}
    config = load_config(
        None, {"model_name_or_path": str(tiny_llama), "output_dir": str(tmp_path), **data, **steps}
    )
    result = train(config)
    lines = [ast.literal_eval(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert [line["step"] for line in lines] == ["2/4", "3/4", "4/4"]
    for line in (lines[0], lines[2]):
        assert {"loss", "learning_rate", "accuracy"} <= set(line)
    assert "loss" not in lines[1] and {"eval_accuracy", "eval_reward_mean"} <= set(lines[1])
    logged = {row["step"]: row for row in result.history}
    assert float(lines[0]["loss"]) == float(f"{logged[2]['train/loss']:.4g}")
    assert float(lines[1]["eval_accuracy"]) == float(f"{logged[3]['eval/accuracy']:.4g}")
