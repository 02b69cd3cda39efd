"""What a TRL user types: TRL's names fold into rmguard's fields, and each added field takes effect."""

from __future__ import annotations

import sys

import pytest
import torch
from transformers.optimization import Adafactor

from rmguard.cli import build_parser
from rmguard.cli.train import parse
from rmguard.errors import ConfigError
from rmguard.training.config import TrainConfig, load_config
from rmguard.training.optimizers import make_optimizer
from rmguard.training.trainer import _load_model, evaluates_at, train

from helpers import CHAT_TEMPLATE


def _config(**values) -> TrainConfig:
    return load_config(None, {"train_file": "pairs.jsonl", **values}, validate=False)


def test_trl_names_fold_into_rmguard_fields(tmp_path):
    (tmp_path / "t.jinja").write_text(CHAT_TEMPLATE)
    config = _config(
        dataset_name="data.jsonl",
        train_file=None,
        dataset_train_split="tr",
        dataset_test_split="te",
        chat_template_path=str(tmp_path / "t.jinja"),
        center_rewards_coefficient=0.02,
        bf16=True,
        torch_dtype="bfloat16",
    )
    assert (config.train_file, config.train_split, config.eval_split) == ("data.jsonl", "tr", "te")
    assert config.chat_template == CHAT_TEMPLATE
    assert (config.objective, config.center_coef) == ("center", 0.02)
    assert (config.mixed_precision, config.dtype) == ("bf16", "bfloat16")
    assert config.center_rewards_coefficient is None and config.dataset_name is None  # folded, not kept twice
    smoothed = _config(label_smoothing_factor=0.2)
    assert (smoothed.objective, smoothed.label_smoothing) == ("label_smoothing", 0.2)
    assert _config(label_smoothing_factor=0.0).objective == "bt"  # TRL's default 0.0 is no smoothing


def test_chat_template_path_takes_a_tokenizer_folder(tiny_llama):
    assert _config(chat_template_path=str(tiny_llama)).chat_template == CHAT_TEMPLATE
    with pytest.raises(ConfigError, match="neither a template file nor a tokenizer folder"):
        _config(chat_template_path="no/such/place")


@pytest.mark.parametrize(
    "values, message",
    [
        ({"center_rewards_coefficient": 0.01, "objective": "bsr"}, "disagrees with objective='bsr'"),
        ({"center_rewards_coefficient": 0.01, "center_coef": 0.5}, "disagrees with center_coef=0.5"),
        ({"dataset_name": "a.jsonl", "train_file": "b.jsonl"}, "disagrees with train_file='b.jsonl'"),
        ({"bf16": True, "fp16": True}, "both true"),
        ({"bf16": True, "mixed_precision": "fp16"}, "disagrees with mixed_precision='fp16'"),
    ],
)
def test_conflicting_names_are_one_line_errors(values, message):
    with pytest.raises(ConfigError, match=message):
        _config(**values)


def test_cli_accepts_trl_names():
    args = build_parser().parse_args(
        [
            "train",
            "--dataset_name",
            "d.jsonl",
            "--center_rewards_coefficient",
            "0.05",
            "--bf16",
            "--optim",
            "sgd",
        ]
    )
    config = parse(args)
    assert (config.train_file, config.objective, config.center_coef) == ("d.jsonl", "center", 0.05)
    assert (config.mixed_precision, config.optim) == ("bf16", "sgd")


@pytest.mark.parametrize(
    "values, message",
    [
        ({"mixed_precision": "fp16"}, "fp16 mixed precision needs a GPU"),
        ({"trust_remote_code": True}, "trust_remote_code"),
        ({"optim": "lion"}, "unknown optim 'lion'"),
        ({"dtype": "float8"}, "unknown dtype 'float8'"),
        ({"warmup_steps": 2.5}, "whole number of steps or a fraction"),
        ({"eval_strategy": "epoch"}, "needs eval_file"),
    ],
)
def test_settings_that_cannot_work_are_refused(values, message, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match=message):
        _config(**values).validate()


def test_fp16_on_cpu_is_one_line_from_the_cli(cli, tmp_path):
    result = cli("train", "--train_file", "x.jsonl", "--fp16", "--output_dir", str(tmp_path / "o"))
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "fp16 mixed precision needs a GPU" in result.stderr


def test_model_fields_take_effect(tiny_llama):
    base = {"model_name_or_path": str(tiny_llama), "objective": "grm"}  # GRM: an MLP head with dropout 0.1
    model, _, _ = _load_model(_config(**base), print)
    assert any(isinstance(m, torch.nn.Dropout) and m.p == 0.1 for m in model.modules())
    assert all(p.dtype == torch.float32 for p in model.parameters())
    model, _, packed = _load_model(
        _config(**base, disable_dropout=True, dtype="bfloat16", attn_implementation="eager", packing=False),
        print,
    )
    assert not packed
    assert all(m.p == 0.0 for m in model.modules() if isinstance(m, torch.nn.Dropout))
    assert all(p.dtype == torch.bfloat16 for p in model.parameters())
    assert model.config._attn_implementation == "eager"


def test_optim_and_warmup_steps_take_effect():
    params = [torch.nn.Parameter(torch.zeros(2))]
    assert type(make_optimizer(_config(), params)) is torch.optim.AdamW
    assert make_optimizer(_config(optim="adamw_torch_fused"), params).defaults["fused"] is True
    assert isinstance(make_optimizer(_config(optim="adafactor"), params), Adafactor)
    assert type(make_optimizer(_config(optim="sgd", learning_rate=0.5), params)) is torch.optim.SGD
    assert _config(warmup_steps=5).warmup_steps_for(100) == 5
    assert _config(warmup_steps=0.25).warmup_steps_for(20) == 5  # a fraction of the run, as transformers
    assert _config(warmup_ratio=0.1).warmup_steps_for(20) == 2
    assert _config(warmup_ratio=0.1, warmup_steps=3).warmup_steps_for(20) == 3


def test_eval_strategy_decides_when_to_evaluate():
    steps = _config(eval_strategy="steps", eval_steps=2, eval_file="e.jsonl")
    assert [evaluates_at(steps, s, False) for s in (1, 2, 3, 4)] == [False, True, False, True]
    assert not evaluates_at(steps, 4, end_of_epoch=True)
    epoch = _config(eval_strategy="epoch", eval_steps=2)
    assert not evaluates_at(epoch, 2, False) and evaluates_at(epoch, 3, True)
    never = _config(eval_strategy="no", eval_steps=2)
    assert not any(evaluates_at(never, s, e) for s in (1, 2) for e in (False, True))
    defaulted = _config(eval_strategy="steps", logging_steps=3, eval_file="e.jsonl")
    defaulted.validate()
    assert defaulted.eval_steps == 3  # TRL: eval_steps defaults to logging_steps


def test_a_trl_style_run_end_to_end(tiny_llama, synthetic_data, tmp_path):
    """sgd with 4 warm-up steps, evaluation per epoch, tensorboard under the run name, TRL's names."""
    config = load_config(
        None,
        {
            "model_name_or_path": str(tiny_llama),
            "dataset_name": str(synthetic_data["train"]),
            "eval_file": str(synthetic_data["eval"]),
            "output_dir": str(tmp_path / "out"),
            "learning_rate": 0.1,
            "optim": "sgd",
            "warmup_steps": 4,
            "num_train_epochs": 2,
            "per_device_train_batch_size": 16,
            "logging_steps": 1,
            "eval_strategy": "epoch",
            "run_name": "my-run",
            "report_to": ["tensorboard"],
            "disable_tqdm": True,
        },
    )
    result = train(config)
    lrs = [h["train/lr"] for h in result.history if "train/lr" in h]
    assert lrs[:4] == pytest.approx([0.025, 0.05, 0.075, 0.1])  # warm-up to 0.1 over 4 steps, then decay
    epochs = [h for h in result.history if "epoch" in h]
    assert [(h["step"], h["epoch"]) for h in epochs] == [(6, 1), (12, 2)]  # 96 pairs / 16 = 6 steps each
    assert all("eval/accuracy" in h for h in epochs)
    assert list((tmp_path / "out" / "logs" / "my-run").glob("events.out.tfevents*"))


def test_report_to_wandb_without_wandb_is_one_line_naming_the_extra(
    monkeypatch, tiny_llama, synthetic_data, tmp_path
):
    monkeypatch.setitem(sys.modules, "wandb", None)  # as if not installed: import raises ImportError
    config = load_config(
        None,
        {
            "model_name_or_path": str(tiny_llama),
            "train_file": str(synthetic_data["train"]),
            "output_dir": str(tmp_path / "out"),
            "report_to": ["wandb"],
        },
    )
    with pytest.raises(ConfigError, match=r"needs the 'wandb' package.*pip install 'rmguard\[wandb\]'"):
        train(config)
