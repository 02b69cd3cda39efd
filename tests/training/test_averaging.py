"""WARM: the weight average against a hand average, and the refusals."""

from __future__ import annotations

import json

import pytest
import torch

from rmguard.errors import ConfigError
from rmguard.training.averaging import average_state_dicts


def test_average_of_state_dicts_by_hand():
    a = {
        "w": torch.tensor([[1.0, 2.0]]),
        "b": torch.tensor([0.5], dtype=torch.bfloat16),
        "ids": torch.arange(3),
    }
    b = {
        "w": torch.tensor([[3.0, -2.0]]),
        "b": torch.tensor([1.5], dtype=torch.bfloat16),
        "ids": torch.arange(3),
    }
    c = {
        "w": torch.tensor([[2.0, 3.0]]),
        "b": torch.tensor([1.0], dtype=torch.bfloat16),
        "ids": torch.arange(3),
    }
    two = average_state_dicts([a, b])
    assert two["w"].tolist() == [[2.0, 0.0]]
    assert two["b"].dtype == torch.bfloat16 and two["b"].tolist() == [1.0]
    assert torch.equal(two["ids"], torch.arange(3))
    assert average_state_dicts([a, b, c])["w"].tolist() == [[2.0, 1.0]]


def test_mismatched_state_dicts_are_refused():
    a = {"w": torch.zeros(2, 3), "ids": torch.arange(3)}
    with pytest.raises(ConfigError, match="at least two"):
        average_state_dicts([a])
    with pytest.raises(ConfigError, match="B lacks 'ids'"):
        average_state_dicts([a, {"w": torch.zeros(2, 3)}], names=["A", "B"])
    with pytest.raises(ConfigError, match=r"B: 'w' is \(3, 2\)"):
        average_state_dicts([a, {"w": torch.zeros(3, 2), "ids": torch.arange(3)}], names=["A", "B"])
    with pytest.raises(ConfigError, match="'ids' differs"):
        average_state_dicts([a, {"w": torch.zeros(2, 3), "ids": torch.arange(1, 4)}], names=["A", "B"])


def fine_tuned(base, out, seed, kind="standard", odin=False, lora=False):
    """A reward model on ``base`` whose every trainable weight moved by seeded noise (as fine-tuning moves
    them), saved as rmguard saves a trained model."""
    from rmguard.training.modeling import add_length_head, add_lora, build_reward_model, save_reward_model

    torch.manual_seed(seed)
    model, tokenizer = build_reward_model(str(base), kind, "linear")
    if odin:
        add_length_head(model)
    if lora:
        add_lora(model, 4, 8, 0.0, ["q_proj", "v_proj"])
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.requires_grad:
                parameter.add_(0.05 * torch.randn_like(parameter))
    save_reward_model(model, tokenizer, out, {"objective": "bt", "base_model_name_or_path": str(base)})
    return out


def test_rmguard_average_is_the_hand_average_and_reads_with_plain_transformers(tiny_llama, tmp_path):
    from safetensors.torch import load_file
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from rmguard.scoring import RewardScorer

    from helpers import run_cli

    a, b = fine_tuned(tiny_llama, tmp_path / "a", 1), fine_tuned(tiny_llama, tmp_path / "b", 2)
    result = run_cli("average", "--model", str(a), "--model", str(b), "--output", str(tmp_path / "warm"))
    assert result.returncode == 0, result.stderr
    wa, wb = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    warm = load_file(str(tmp_path / "warm" / "model.safetensors"))
    assert set(warm) == set(wa)
    for key, value in warm.items():
        assert torch.allclose(value, (wa[key] + wb[key]) / 2, rtol=0, atol=1e-7), key
    meta = json.loads((tmp_path / "warm" / "rmguard.json").read_text())
    assert meta["objective"] == "warm" and meta["warm_members"] == [str(a), str(b)]
    assert meta["init_fingerprint"] == json.loads((a / "rmguard.json").read_text())["init_fingerprint"]
    plain = AutoModelForSequenceClassification.from_pretrained(tmp_path / "warm").eval()
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "warm")
    messages = [{"role": "user", "content": "p1 p2"}, {"role": "assistant", "content": "g1 g2"}]
    ids = tokenizer.apply_chat_template(messages, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        reward = plain(**ids).logits[0, 0].item()
    assert RewardScorer(tmp_path / "warm").score([messages[:1]], [messages[1:]])[0] == pytest.approx(
        reward, abs=1e-5
    )


def test_odin_members_average_both_heads(tiny_llama, tmp_path):
    from safetensors.torch import load_file

    from rmguard.training.averaging import average_reward_models

    a = fine_tuned(tiny_llama, tmp_path / "a", 1, odin=True)
    b = fine_tuned(tiny_llama, tmp_path / "b", 2, odin=True)
    average_reward_models([a, b], tmp_path / "warm")
    heads = [load_file(str(p / "length_head.safetensors"))["weight"] for p in (a, b, tmp_path / "warm")]
    assert torch.allclose(heads[2], (heads[0] + heads[1]) / 2, atol=1e-7)


def test_average_refuses_other_initialisations_and_architectures(cli, tiny_llama, tmp_path):
    from helpers import save_tiny_model

    a = fine_tuned(tiny_llama, tmp_path / "a", 1)
    other_base = save_tiny_model(tmp_path / "other-base", seed=7)  # same architecture, other weights
    cases = {
        "other-init": (fine_tuned(other_base, tmp_path / "c", 3), "was fine-tuned from other weights than"),
        "grm": (fine_tuned(tiny_llama, tmp_path / "g", 4, kind="grm"), "models of different architecture"),
        "odin": (fine_tuned(tiny_llama, tmp_path / "o", 5, odin=True), "models of different architecture"),
        "qwen": (
            fine_tuned(save_tiny_model(tmp_path / "qwen", family="qwen2"), tmp_path / "q", 6),
            "models of different architecture",
        ),
    }
    for name, (other, message) in cases.items():
        result = cli(
            "average", "--model", str(a), "--model", str(other), "--output", str(tmp_path / f"out-{name}")
        )
        assert result.returncode == 2, (name, result.stdout)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], (name, result.stderr)
        assert not (tmp_path / f"out-{name}").exists()
    unrecorded = tmp_path / "unrecorded"
    __import__("shutil").copytree(a, unrecorded)
    (unrecorded / "rmguard.json").write_text(json.dumps({"kind": "standard", "head_type": "linear"}))
    result = cli("average", "--model", str(a), "--model", str(unrecorded), "--output", str(tmp_path / "u"))
    assert result.returncode == 2 and "records no initialisation" in result.stderr


def test_lora_members_are_averaged_as_their_merged_checkpoints(tiny_llama, tmp_path):
    from safetensors.torch import load_file

    from rmguard.training.averaging import average_reward_models
    from rmguard.training.modeling import merge_lora

    members = [fine_tuned(tiny_llama, tmp_path / f"a{i}", i, odin=True, lora=True) for i in (1, 2)]
    assert (members[0] / "adapter_model.safetensors").is_file()
    average_reward_models(members, tmp_path / "warm")
    merged = []
    for i, member in enumerate(members):
        merge_lora(member, tmp_path / f"m{i}")
        merged.append(load_file(str(tmp_path / f"m{i}" / "model.safetensors")))
    warm = load_file(str(tmp_path / "warm" / "model.safetensors"))
    assert set(warm) == set(merged[0])
    for key, value in warm.items():
        assert torch.allclose(value, (merged[0][key] + merged[1][key]) / 2, rtol=0, atol=1e-6), key
    heads = [load_file(str(p / "length_head.safetensors"))["weight"] for p in (*members, tmp_path / "warm")]
    assert torch.allclose(heads[2], (heads[0] + heads[1]) / 2, atol=1e-7)
    assert not json.loads((tmp_path / "warm" / "rmguard.json").read_text())["peft"]
