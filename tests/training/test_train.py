"""Training end to end on a learnable synthetic task: every objective, resume after a kill, LoRA, bad input."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from rmguard.errors import ConfigError
from rmguard.scoring import RewardScorer, score_file
from rmguard.training.checkpoints import list_checkpoints
from rmguard.training.config import load_config
from rmguard.training.trainer import train

from helpers import REPO, run_cli, synthetic_pair


def config_for(tiny_llama, synthetic_data, tmp_path, **overrides):
    values = dict(
        model_name_or_path=str(tiny_llama),
        train_file=str(synthetic_data["train"]),
        eval_file=str(synthetic_data["eval"]),
        output_dir=str(tmp_path / "out"),
        learning_rate=3e-3,
        num_train_epochs=3,
        per_device_train_batch_size=8,
        disable_tqdm=True,
        report_to=["none"],
        seed=0,
    )
    values.update(overrides)
    return load_config(None, values)


OBJECTIVES = [
    {"objective": "bt"},
    {"objective": "bt", "margin": 1.0},
    {"objective": "bsr"},
    {"objective": "bsr", "bsr_scope": "global"},
    {"objective": "center"},
    {"objective": "hinge", "margin": 1.0},
    {"objective": "bt_norm", "learning_rate": 1e-2},
    {"objective": "bt_dr"},
    {"objective": "label_smoothing"},
    {"objective": "grm"},
    {"objective": "grm", "head_type": "linear"},
    {"objective": "bt", "grm_regularizer": "sft_plain"},
    {"objective": "bt", "grm_regularizer": "dpo"},
    {"objective": "bt", "grm_regularizer": "dpo", "grm_reference": "model"},
    {"objective": "bt", "grm_regularizer": "dpo_noref"},
    {"objective": "bsr", "grm_regularizer": "sft"},
    {"objective": "odin"},
]


@pytest.mark.parametrize("overrides", OBJECTIVES, ids=lambda o: "-".join(str(v) for v in o.values()))
def test_every_objective_learns_the_synthetic_task(tiny_llama, synthetic_data, tmp_path, overrides):
    result = train(config_for(tiny_llama, synthetic_data, tmp_path, **overrides))
    assert result.eval_metrics["accuracy"] >= 0.9, result.eval_metrics
    assert result.eval_metrics["pairs"] == 64


def test_bsr_keeps_rewards_nearer_zero_than_bt(tiny_llama, synthetic_data, tmp_path):
    common = dict(num_train_epochs=4)
    bt = train(config_for(tiny_llama, synthetic_data, tmp_path / "bt", objective="bt", **common)).eval_metrics
    bsr = train(
        config_for(tiny_llama, synthetic_data, tmp_path / "bsr", objective="bsr", bsr_lambda=0.5, **common)
    ).eval_metrics

    # BSR penalises the batch's mean squared reward, E[r²] = mean² + std²: its root, the rewards' distance
    # from zero, and their spread are both smaller (here 2.2 vs 5.3; BT's mean happens to sit near zero)
    def root_mean_square(metrics: dict) -> float:
        return math.hypot(metrics["reward_mean"], metrics["reward_std"])

    assert root_mean_square(bsr) < root_mean_square(bt) and bsr["reward_std"] < bt["reward_std"]


def test_frozen_embeddings_and_bottom_layers_stay_as_loaded_and_the_rest_trains(
    tiny_llama, synthetic_data, tmp_path
):
    train(
        config_for(
            tiny_llama, synthetic_data, tmp_path, num_train_epochs=1, freeze_embeddings=True, freeze_layers=1
        )
    )
    base = load_file(str(tiny_llama / "model.safetensors"))
    trained = load_file(str(tmp_path / "out" / "model.safetensors"))
    for name in (
        "model.embed_tokens.weight",
        "model.layers.0.mlp.up_proj.weight",
        "model.layers.0.input_layernorm.weight",
    ):
        assert torch.equal(trained[name], base[name]), name
    name = "model.layers.1.mlp.up_proj.weight"
    assert not torch.allclose(trained[name], base[name]), "the top layer still trains"
    with pytest.raises(ConfigError, match="freeze_layers must be below the model's 2 layers"):
        train(config_for(tiny_llama, synthetic_data, tmp_path / "all", freeze_layers=2))


KILL_SCRIPT = textwrap.dedent("""
    import os, sys
    from rmguard.training.config import load_config
    from rmguard.training.trainer import train
    config = load_config(sys.argv[1])
    def die(state):
        if state.global_step == int(sys.argv[2]):
            os._exit(9)  # no cleanup, like a kill
    train(config, callbacks=[die] if int(sys.argv[2]) > 0 else [])
""")


def test_resume_after_kill_gives_the_uninterrupted_result(tiny_llama, synthetic_data, tmp_path):
    import yaml

    script = tmp_path / "run.py"
    script.write_text(KILL_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    base = dict(
        model_name_or_path=str(tiny_llama),
        train_file=str(synthetic_data["train"]),
        learning_rate=3e-3,
        per_device_train_batch_size=4,
        gradient_accumulation_steps=2,
        num_train_epochs=2,
        save_steps=3,
        objective="grm",
        grm_regularizer="sft",
        head_type="mlp",
        disable_tqdm=True,
        report_to=["csv"],
        seed=1,
    )
    results = {}
    for name, kill_at in (("straight", 0), ("killed", 7)):
        config = tmp_path / f"{name}.yaml"
        config.write_text(yaml.safe_dump({**base, "output_dir": str(tmp_path / name)}))
        run = subprocess.run(
            [sys.executable, str(script), str(config), str(kill_at)], env=env, capture_output=True, text=True
        )
        if name == "killed":
            assert run.returncode == 9, run.stderr
            assert not (tmp_path / name / "rmguard.json").exists()  # no final model that looks complete
            assert [p.name for p in list_checkpoints(tmp_path / name)] == ["checkpoint-3", "checkpoint-6"]
            config.write_text(
                yaml.safe_dump(
                    {**base, "output_dir": str(tmp_path / name), "resume_from_checkpoint": "latest"}
                )
            )
            run = subprocess.run(
                [sys.executable, str(script), str(config), "0"], env=env, capture_output=True, text=True
            )
            assert "resumed from" in run.stdout
        assert run.returncode == 0, run.stderr
        results[name] = {
            **load_file(str(tmp_path / name / "model.safetensors")),
            **{
                f"head.{k}": v for k, v in load_file(str(tmp_path / name / "reward_head.safetensors")).items()
            },
        }
    assert results["straight"].keys() == results["killed"].keys()
    for key, value in results["straight"].items():
        torch.testing.assert_close(results["killed"][key], value, atol=0, rtol=0, msg=key)
    assert (
        json.loads((tmp_path / "killed" / "rmguard.json").read_text())["global_step"] == 24
    )  # 96 pairs / (4 × 2) per step × 2 epochs


def test_lora_adapter_saves_head_and_merges(tiny_llama, synthetic_data, tmp_path):
    config = config_for(
        tiny_llama,
        synthetic_data,
        tmp_path,
        use_peft=True,
        lora_r=4,
        lora_alpha=8,
        lora_target_modules=["q_proj", "v_proj", "up_proj", "down_proj"],
        learning_rate=3e-2,
    )
    result = train(config)
    assert result.eval_metrics["accuracy"] >= 0.9
    adapter = tmp_path / "out"
    assert (adapter / "adapter_model.safetensors").is_file() and not (adapter / "model.safetensors").exists()
    saved = load_file(str(adapter / "adapter_model.safetensors"))
    assert any("score" in key for key in saved), "the reward head is saved with the adapter"
    merged_run = run_cli("merge", "--adapter", str(adapter), "--output", str(tmp_path / "merged"))
    assert merged_run.returncode == 0, merged_run.stderr
    rng = __import__("random").Random(9)
    rows = [synthetic_pair(rng) for _ in range(6)]
    prompts, responses = [r["prompt"] for r in rows], [r["chosen"] for r in rows]
    adapter_scores = RewardScorer(adapter).score(prompts, responses)
    merged_scores = RewardScorer(tmp_path / "merged").score(prompts, responses)
    assert merged_scores == pytest.approx(adapter_scores, abs=1e-4)
    plain = AutoModelForSequenceClassification.from_pretrained(tmp_path / "merged").eval()
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "merged")
    ids = tokenizer.apply_chat_template(prompts[0] + responses[0], return_tensors="pt", return_dict=True)
    with torch.no_grad():
        assert plain(**ids).logits[0, 0].item() == pytest.approx(adapter_scores[0], abs=1e-4)


def test_odin_saves_the_quality_head_as_score_and_the_length_head_beside_it(
    tiny_llama, synthetic_data, tmp_path
):
    from rmguard.data import load_pairs
    from rmguard.training.collate import PaddedPairCollator
    from rmguard.training.features import tokenize_pairs
    from rmguard.training.loss import RewardLoss
    from rmguard.training.modeling import load_reward_model
    from rmguard.training.objectives import odin

    config = config_for(tiny_llama, synthetic_data, tmp_path, objective="odin", num_train_epochs=1)
    train(config)
    out = tmp_path / "out"
    assert (out / "length_head.safetensors").is_file()
    assert json.loads((out / "rmguard.json").read_text())["length_head"] is True
    model, tokenizer = load_reward_model(out)
    assert model.length_head is not None
    # plain transformers reads score = the quality head: the same reward as rmguard's scorer
    rng = __import__("random").Random(4)
    rows = [synthetic_pair(rng) for _ in range(4)]
    prompts, responses = [r["prompt"] for r in rows], [r["chosen"] for r in rows]
    scores = RewardScorer(out).score(prompts, responses)
    plain = AutoModelForSequenceClassification.from_pretrained(out).eval()
    assert torch.equal(plain.score.weight, model.transformer.score.weight)
    for prompt, response, score in zip(prompts, responses, scores):
        ids = tokenizer.apply_chat_template(prompt + response, return_tensors="pt", return_dict=True)
        with torch.no_grad():
            assert plain(**ids).logits[0, 0].item() == pytest.approx(score, abs=1e-5)
    # the training loss of one batch is ODIN's formula on the two heads' rewards and the token counts
    pairs, _ = load_pairs(str(synthetic_data["train"]), "auto", config.pair_strategy, "train", 0)
    features, _ = tokenize_pairs(pairs[:6], tokenizer, 256, "drop")
    batch = PaddedPairCollator(tokenizer.pad_token_id, with_lengths=True)(features)
    with torch.no_grad():
        output = model(
            **{k: batch[k] for k in ("input_ids", "attention_mask", "position_ids", "reward_index")}
        )
        loss, _ = RewardLoss(config)(output, batch)
        by_hand = odin(
            output.rewards[:6],
            output.rewards[6:],
            output.length_rewards[:6],
            output.length_rewards[6:],
            torch.tensor([float(len(f.chosen_ids)) for f in features]),
            torch.tensor([float(len(f.rejected_ids)) for f in features]),
            model.transformer.score.weight,
            model.length_head.weight,
        )
    assert loss.item() == pytest.approx(by_hand.item(), rel=1e-6)
    with pytest.raises(ConfigError, match="has ODIN's length head, but the objective is bt"):
        train(config_for(out, synthetic_data, tmp_path / "again", objective="bt", num_train_epochs=1))


def test_odin_with_lora_keeps_its_length_head_through_the_merge(tiny_llama, synthetic_data, tmp_path):
    lora = dict(use_peft=True, lora_r=4, lora_alpha=8, lora_target_modules=["q_proj", "v_proj"])
    train(config_for(tiny_llama, synthetic_data, tmp_path, objective="odin", num_train_epochs=1, **lora))
    adapter, merged = tmp_path / "out", tmp_path / "merged"
    assert (adapter / "length_head.safetensors").is_file()
    result = run_cli("merge", "--adapter", str(adapter), "--output", str(merged))
    assert result.returncode == 0, result.stderr
    assert json.loads((merged / "rmguard.json").read_text())["length_head"] is True
    assert torch.equal(
        load_file(str(merged / "length_head.safetensors"))["weight"],
        load_file(str(adapter / "length_head.safetensors"))["weight"],
    )
    rng = __import__("random").Random(3)
    rows = [synthetic_pair(rng) for _ in range(4)]
    prompts, responses = [r["prompt"] for r in rows], [r["chosen"] for r in rows]
    assert RewardScorer(merged).score(prompts, responses) == pytest.approx(
        RewardScorer(adapter).score(prompts, responses), abs=1e-4
    )


def test_cli_train_with_yaml_and_overrides_then_score(tiny_llama, synthetic_data, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(
        f"model_name_or_path: {tiny_llama}\ntrain_file: {synthetic_data['train']}\n"
        f"eval_file: {synthetic_data['eval']}\nobjective: bt\nlearning_rate: 1.0e-9\n"
        f"output_dir: {tmp_path / 'rm'}\nreport_to: [csv]\nlogging_steps: 1\n"
    )
    run = run_cli(
        "train",
        "--config",
        str(config),
        "--learning_rate",
        "3e-3",
        "--objective",
        "bsr",
        "--num_train_epochs",
        "3",
        "--disable_tqdm",
        "true",
    )
    assert run.returncode == 0, run.stderr
    meta = json.loads((tmp_path / "rm" / "rmguard.json").read_text())
    assert meta["objective"] == "bsr" and meta["eval_metrics"]["accuracy"] >= 0.9
    rows = (tmp_path / "rm" / "logs" / "metrics.csv").read_text().splitlines()
    assert rows[0] == "step,metric,value" and any(",train/loss," in row for row in rows)
    scored = run_cli(
        "score",
        "--model",
        str(tmp_path / "rm"),
        "--data",
        str(synthetic_data["eval"]),
        "--output",
        str(tmp_path / "scores.jsonl"),
    )
    assert scored.returncode == 0, scored.stderr
    lines = [json.loads(line) for line in (tmp_path / "scores.jsonl").read_text().splitlines()]
    assert len(lines) == 64 and [line["row"] for line in lines] == list(range(1, 65))
    accuracy = sum(line["chosen_reward"] > line["rejected_reward"] for line in lines) / 64
    assert accuracy == pytest.approx(meta["eval_metrics"]["accuracy"])


def test_score_single_response_file_in_input_order(tiny_llama, synthetic_data, tmp_path):
    train(config_for(tiny_llama, synthetic_data, tmp_path))
    # Plain strings are plain text (prompt + response, as TRL's standard format); messages use the chat template.
    items = [
        {"prompt": [{"role": "user", "content": "p1 p2"}], "response": "g1 g2 g3"},
        {"prompt": "p3", "response": [{"role": "assistant", "content": "b1"}]},
        {"prompt": "p4", "response": "g5", "id": "case-4"},
    ]
    data = tmp_path / "single.jsonl"
    data.write_text("".join(json.dumps(item) + "\n" for item in items))
    summary = score_file(tmp_path / "out", str(data), tmp_path / "s.jsonl")
    rewards = [json.loads(line)["reward"] for line in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert summary["records"] == 3 and len(rewards) == 3
    assert rewards[0] > rewards[1]
    user = [[{"role": "user", "content": p}] for p in ("p1 p2", "p3")]
    assistant = [[{"role": "assistant", "content": r}] for r in ("g1 g2 g3", "b1")]
    expected = RewardScorer(tmp_path / "out").score(user + ["p4"], assistant + ["g5"])
    assert rewards == pytest.approx(expected, abs=1e-6)
    assert rewards[2] != rewards[1]
    records = [json.loads(line) for line in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert [r.get("id") for r in records] == [None, None, "case-4"] and [r["row"] for r in records] == [
        1,
        2,
        3,
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--learning_rate", "1e30", "--max_grad_norm", "0", "--num_train_epochs", "3"], "the loss is"),
        (["--objective", "nope"], "unknown objective 'nope'"),
        (["--model_name_or_path", "/nonexistent/model"], "/nonexistent/model"),
    ],
)
def test_cli_errors_are_one_line_without_traceback(cli, tiny_llama, synthetic_data, tmp_path, args, message):
    run = cli(
        "train",
        "--model_name_or_path",
        str(tiny_llama),
        "--train_file",
        str(synthetic_data["train"]),
        "--output_dir",
        str(tmp_path / "o"),
        "--disable_tqdm",
        "true",
        "--report_to",
        "none",
        *args,
    )
    assert run.returncode == 2
    assert message in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "o" / "rmguard.json").exists()


def test_cli_rejects_unknown_config_fields(cli, tmp_path, synthetic_data):
    config = tmp_path / "c.yaml"
    config.write_text(f"train_file: {synthetic_data['train']}\nlearning_rat: 1\n")
    run = cli("train", "--config", str(config))
    assert run.returncode == 2 and "unknown config field(s): learning_rat" in run.stderr
    run = cli("train", "--config", str(config).replace("c.yaml", "missing.yaml"))
    assert run.returncode == 2 and "no such config file" in run.stderr
    run = cli("train", "--train_file", str(synthetic_data["train"]), "--learnin_rate", "1")
    assert run.returncode == 2 and "learnin_rate" in run.stderr


def test_tensorboard_logging_and_eval_during_training(tiny_llama, synthetic_data, tmp_path):
    result = train(
        config_for(
            tiny_llama,
            synthetic_data,
            tmp_path,
            report_to=["tensorboard", "csv"],
            eval_steps=12,
            logging_steps=6,
        )
    )
    assert list((tmp_path / "out" / "logs").rglob("events.out.tfevents*")), "no TensorBoard event file"
    evals = [row for row in result.history if "eval/accuracy" in row]
    assert [row["step"] for row in evals] == [12, 24, 36]
    assert {"eval/reward_mean", "eval/reward_std", "eval/margin_mean", "eval/hidden_norm_mean"} <= set(
        evals[0]
    )
