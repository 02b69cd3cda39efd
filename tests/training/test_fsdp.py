"""FSDP2 on two CPU processes (gloo) against one process over the same global batch.

One torchrun launch trains every configuration below in turn (the launch costs more than the runs), then
measures the local shard sizes of a sharded model and its optimizer; the test process trains the same
configurations in one process and compares the saved models.
"""

from __future__ import annotations

import json
import textwrap

import pytest
import torch
from safetensors.torch import load_file
from test_distributed import failure, launch

from rmguard.errors import ConfigError
from rmguard.training.config import load_config
from rmguard.training.sharding import ShardingPlan, accelerate_fsdp_settings, sharding_plan
from rmguard.training.trainer import train

FSDP = "full_shard auto_wrap"
COMMON = {
    "learning_rate": 3e-3,
    "max_steps": 3,
    "disable_tqdm": True,
    "report_to": ["none"],
    "max_length": 48,
    # Dropout draws differ per rank: equality to one process holds for the deterministic computation.
    "disable_dropout": True,
    # A parameter whose gradient is 0 analytically (GRM's head biases under BT, whose loss sees only
    # r_c − r_r) gets float noise whose sign depends on the reduction order; AdamW at ε = 1e-8 turns that
    # noise into full-size steps in any engine, DDP included. ε = 1e-4 keeps noise noise.
    "adam_epsilon": 1e-4,
}
# name → (settings of the 2-process run, what one process changes to see the same global batch of 8)
RUNS = {
    # 64 eval pairs in batches of 48: the second rank's batch of 16 is padded to 48.
    "bt": (
        {"objective": "bt", "save_steps": 2, "save_total_limit": 5, "per_device_eval_batch_size": 48},
        {"per_device_train_batch_size": 8},
    ),
    "bsr_global": (
        {"objective": "bsr", "bsr_lambda": 0.1, "bsr_scope": "global"},
        {"per_device_train_batch_size": 8},
    ),
    # The reference's device scope: each rank's own B pairs, so one process accumulates two micro-batches.
    "bsr_device": ({"objective": "bsr", "bsr_lambda": 0.1}, {"gradient_accumulation_steps": 2}),
    "center_margin": (
        {
            "objective": "center",
            "center_coef": 0.05,
            "margin": 0.5,
            "gradient_checkpointing": True,
            "fsdp": "shard_grad_op auto_wrap",
        },
        {"per_device_train_batch_size": 8},
    ),  # fmt: skip
    "grm_sft": ({"objective": "grm"}, {"per_device_train_batch_size": 8}),
    "grm_sft_plain": (
        {"objective": "grm", "grm_regularizer": "sft_plain"},
        {"per_device_train_batch_size": 8},
    ),
    "grm_dpo": ({"objective": "grm", "grm_regularizer": "dpo"}, {"per_device_train_batch_size": 8}),
    "grm_dpo_noref": (
        {"objective": "grm", "grm_regularizer": "dpo_noref"},
        {"per_device_train_batch_size": 8},
    ),
    "odin": ({"objective": "odin"}, {"per_device_train_batch_size": 8}),
    "bt_lora": (
        {"objective": "bt", "use_peft": True, "lora_r": 4, "lora_alpha": 8},
        {"per_device_train_batch_size": 8},
    ),
}

SCRIPT = textwrap.dedent("""
    import json, sys, torch
    from accelerate.state import AcceleratorState, GradientState
    from rmguard.training.config import load_config
    from rmguard.training.trainer import train

    # One process group for every run: a group torn down and created again on torchrun's store hangs at
    # times, so the runs' end_training leaves it up and the last one here takes it down.
    destroy = torch.distributed.destroy_process_group
    torch.distributed.destroy_process_group = lambda *args, **kwargs: None
    runs = json.loads(open(sys.argv[1]).read())
    for name, settings in runs.items():
        train(load_config(None, settings))
        AcceleratorState._reset_state(reset_partial_state=True)  # the next run starts its own Accelerator
        GradientState._reset_state()

    # Memory: what one rank holds of a sharded model and of its optimizer state after a step.
    from accelerate import Accelerator
    from rmguard.training.modeling import build_reward_model
    from rmguard.training.sharding import ShardingPlan, local_numel, shard_model
    accelerator = Accelerator(cpu=True)
    model, _ = build_reward_model(sys.argv[2])
    total = sum(p.numel() for p in model.parameters())
    shard_model(model, model.backbone, ShardingPlan(), "no")
    optimizer = torch.optim.AdamW(model.parameters())
    ids = torch.randint(0, 50, (2, 6))
    out = model(input_ids=ids, attention_mask=torch.ones_like(ids), position_ids=torch.arange(6).expand(2, 6),
                reward_index=torch.tensor([[0, 5], [1, 5]]))
    out.rewards.sum().backward()
    optimizer.step()
    state = [t for s in optimizer.state.values() for k, t in s.items() if k != "step"]
    sizes = accelerator.gather(torch.tensor([[local_numel(model.parameters()), local_numel(state)]]))
    if accelerator.is_main_process:
        json.dump({"total": total, "local": sizes.tolist()}, open(sys.argv[3], "w"))
    accelerator.wait_for_everyone()
    destroy()
""")


def _settings(tiny_llama, synthetic_data, out, name, one_process):
    two, one = RUNS[name]
    settings = {
        **COMMON,
        "model_name_or_path": str(tiny_llama),
        "train_file": str(synthetic_data["train"]),
        "output_dir": str(out / name),
        "per_device_train_batch_size": 4,
        "eval_file": str(synthetic_data["eval"]),
        **two,
    }
    if one_process:
        settings = {**settings, **one, "fsdp": None}
    else:
        settings.setdefault("fsdp", FSDP)
    return settings


@pytest.fixture(scope="module")
def fsdp_runs(tiny_llama, synthetic_data, tmp_path_factory):
    """(2-process FSDP output folder, 1-process output folder, shard sizes)."""
    root = tmp_path_factory.mktemp("fsdp")
    two, one = root / "two", root / "one"
    runs = {name: _settings(tiny_llama, synthetic_data, two, name, False) for name in RUNS}
    # Resumed from the BT run's step-2 checkpoint: must end bit-for-bit where the uninterrupted run did.
    runs["bt_resumed"] = {
        **runs["bt"],
        "output_dir": str(two / "bt_resumed"),
        "resume_from_checkpoint": str(two / "bt" / "checkpoints" / "checkpoint-2"),
    }
    # ODIN's correlations run over the batch gathered from every rank: under DDP too, one process over it.
    runs["odin_ddp"] = {**runs["odin"], "output_dir": str(two / "odin_ddp"), "fsdp": None}
    (root / "runs.json").write_text(json.dumps(runs))
    script = root / "fsdp.py"
    script.write_text(SCRIPT)
    result = launch(script, root / "runs.json", tiny_llama, root / "memory.json")
    assert result.returncode == 0, failure(result)
    for name in RUNS:
        train(load_config(None, _settings(tiny_llama, synthetic_data, one, name, True)))
    return two, one, json.loads((root / "memory.json").read_text())


def _assert_same_weights(a, b, atol=1e-5):
    assert sorted(a) == sorted(b)
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=atol, rtol=0, msg=key)


def _rewards(folder, synthetic_data):
    from rmguard.data import load_pairs
    from rmguard.scoring import RewardScorer

    pairs = load_pairs(str(synthetic_data["eval"]))[0][:16]
    scorer = RewardScorer(str(folder), batch_size=16)
    return torch.tensor(
        scorer.score([p.prompt for p in pairs] * 2, [p.chosen for p in pairs] + [p.rejected for p in pairs])
    )


@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", ["bt", "bsr_global", "grm_sft", "bt_lora"])
def test_fsdp_model_scores_held_out_pairs_as_one_process(fsdp_runs, synthetic_data, name):
    two, one, _ = fsdp_runs
    torch.testing.assert_close(
        _rewards(two / name, synthetic_data), _rewards(one / name, synthetic_data), atol=1e-4, rtol=0
    )
    meta, reference = (json.loads((out / name / "rmguard.json").read_text()) for out in (two, one))
    assert meta["global_step"] == 3
    # The evaluation gathered from both ranks is the one process's, every pair counted once.
    assert meta["eval_metrics"]["pairs"] == reference["eval_metrics"]["pairs"] == 64
    for metric in ("accuracy", "reward_mean", "hidden_norm_mean"):
        assert meta["eval_metrics"][metric] == pytest.approx(reference["eval_metrics"][metric], abs=1e-4)


def test_fsdp_saves_the_plain_transformers_layout(fsdp_runs):
    from transformers import AutoModelForSequenceClassification

    two, one, _ = fsdp_runs
    model, info = AutoModelForSequenceClassification.from_pretrained(two / "bt", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    reference = AutoModelForSequenceClassification.from_pretrained(one / "bt")
    _assert_same_weights(model.state_dict(), reference.state_dict())
    # GRM: the causal LM's weights and reward_head.safetensors; LoRA: the adapter and the trained score.
    _assert_same_weights(
        load_file(two / "grm_sft" / "reward_head.safetensors"),
        load_file(one / "grm_sft" / "reward_head.safetensors"),
    )
    _assert_same_weights(
        load_file(two / "grm_sft" / "model.safetensors"), load_file(one / "grm_sft" / "model.safetensors")
    )
    lora = load_file(two / "bt_lora" / "adapter_model.safetensors")
    assert any("lora_A" in k for k in lora) and any("score" in k for k in lora)
    _assert_same_weights(lora, load_file(one / "bt_lora" / "adapter_model.safetensors"))


@pytest.mark.parametrize("name", [n for n in RUNS if n not in ("bt", "grm_sft", "bt_lora")])
def test_objectives_under_fsdp_train_the_weights_of_one_process(fsdp_runs, name):
    two, one, _ = fsdp_runs
    files = ["model.safetensors"] + (["reward_head.safetensors"] if name.startswith("grm") else [])
    files += ["length_head.safetensors"] if name == "odin" else []
    for file in files:
        _assert_same_weights(load_file(two / name / file), load_file(one / name / file))


def test_odin_under_ddp_trains_the_weights_of_one_process(fsdp_runs):
    two, one, _ = fsdp_runs
    for file in ("model.safetensors", "length_head.safetensors"):
        _assert_same_weights(load_file(two / "odin_ddp" / file), load_file(one / "odin" / file))


def test_fsdp_checkpoints_are_gathered_and_resume_bit_for_bit(fsdp_runs):
    two, one, _ = fsdp_runs
    step2 = two / "bt" / "checkpoints" / "checkpoint-2"
    # The same file a single-process run writes at that step: the full state dict, not shards.
    _assert_same_weights(
        load_file(step2 / "model.safetensors"),
        load_file(one / "bt" / "checkpoints" / "checkpoint-2" / "model.safetensors"),
    )
    resumed, straight = (
        load_file(two / "bt_resumed" / "model.safetensors"),
        load_file(two / "bt" / "model.safetensors"),
    )
    assert all(torch.equal(resumed[k], straight[k]) for k in straight)
    # It did start at step 2: a run from step 0 would have saved its own step-2 checkpoint.
    assert not (two / "bt_resumed" / "checkpoints" / "checkpoint-2").exists()


def test_each_rank_holds_half_of_the_parameters_and_optimizer_state(fsdp_runs):
    _, _, memory = fsdp_runs
    (params0, state0), (params1, state1) = memory["local"]
    total = memory["total"]
    assert params0 + params1 == total
    assert abs(params0 - total / 2) < 0.05 * total and abs(params1 - total / 2) < 0.05 * total
    assert state0 + state1 == 2 * total  # AdamW: exp_avg and exp_avg_sq per element, sharded like the params
    assert abs(state0 - total) < 0.1 * total


# ----------------------------------------------------------------------------------------------- settings


def test_fsdp_words_and_config_translate_as_training_arguments():
    assert sharding_plan(None, None) is None
    assert sharding_plan("full_shard auto_wrap", None) == ShardingPlan(reshard_after_forward=True)
    assert sharding_plan("shard_grad_op offload", None) == ShardingPlan(
        reshard_after_forward=False, cpu_offload=True
    )
    plan = sharding_plan(
        True, '{"fsdp_activation_checkpointing": true, "transformer_layer_cls_to_wrap": "LlamaDecoderLayer"}'
    )
    assert plan == ShardingPlan(activation_checkpointing=True, layer_classes=("LlamaDecoderLayer",))
    for fsdp, config, message in [
        ("hybrid_shard", None, "only in FSDP1"),
        ("full_shard shard_grad_op", None, "choose one"),
        ("full_shrd", None, "unknown option 'full_shrd'"),
        (FSDP, {"version": 1}, "FSDP2 only"),
        (FSDP, {"state_dict_type": "SHARDED_STATE_DICT"}, "FULL_STATE_DICT"),
        (FSDP, {"limit_all_gathers": True}, "unknown or FSDP1-only"),
        (FSDP, "{not json", "neither a JSON file nor JSON text"),
    ]:
        with pytest.raises(ConfigError, match=message):
            sharding_plan(fsdp, config)


def _launch_environment(config_file: str) -> dict[str, str]:
    """The environment ``accelerate launch --config_file examples/accelerate/FILE`` gives the training
    processes, from Accelerate's own translation (launch.py's launcher selection, without launching)."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import prepare_deepspeed_cmd_env, prepare_multi_gpu_env

    from helpers import REPO

    path = REPO / "examples" / "accelerate" / config_file
    args = launch_command_parser().parse_args(["--config_file", str(path), "-m", "rmguard", "train"])
    args, defaults, mixed_precision_from_config = _validate_launch_command(args)
    if not args.use_deepspeed:
        return prepare_multi_gpu_env(args)
    fields = list(defaults.deepspeed_config) + (["mixed_precision"] if mixed_precision_from_config else [])
    args.deepspeed_fields_from_accelerate_config = ",".join(fields)
    return prepare_deepspeed_cmd_env(args)[-1]


def test_accelerate_fsdp2_config_file_gives_the_fsdp_plan():
    fsdp, fsdp_config = accelerate_fsdp_settings(_launch_environment("fsdp2.yaml"))
    assert sharding_plan(fsdp, fsdp_config) == ShardingPlan(reshard_after_forward=True)
    assert accelerate_fsdp_settings({}) is None


@pytest.mark.parametrize("stage", [2, 3])
def test_deepspeed_config_files_translate_into_the_plugin(stage, monkeypatch):
    """The DeepSpeed run itself needs GPUs (docs/distributed.md); what the shipped files ask of it is
    checked here through Accelerate's DeepSpeed plugin, built from the launch environment."""
    from accelerate.utils import DeepSpeedPlugin

    for name, value in _launch_environment(f"deepspeed_zero{stage}.yaml").items():
        monkeypatch.setenv(name, value)
    plugin = DeepSpeedPlugin()
    zero = plugin.deepspeed_config["zero_optimization"]
    assert zero["stage"] == stage and plugin.deepspeed_config["gradient_clipping"] == 1.0
    assert zero.get("stage3_gather_16bit_weights_on_model_save", False) is (stage == 3)
    assert not plugin.zero3_init_flag
    assert plugin.deepspeed_config["train_micro_batch_size_per_gpu"] == "auto"  # from the loader's batch


def test_fsdp_config_errors_are_one_line(tiny_llama, synthetic_data, tmp_path):
    base = {"model_name_or_path": str(tiny_llama), "train_file": str(synthetic_data["train"])}
    with pytest.raises(ConfigError, match="fsdp: unknown option"):
        load_config(None, {**base, "fsdp": "zero3"})
