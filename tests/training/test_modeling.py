"""Reward models: pooling, padding invariance, log-probs, strict save/load, ecosystem compatibility."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file
from torch import nn
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

from rmguard.data.records import PreferencePair
from rmguard.errors import ConfigError
from rmguard.scoring import RewardScorer
from rmguard.training.collate import PaddedPairCollator
from rmguard.training.features import tokenize_pairs
from rmguard.training.modeling import (
    REWARD_HEAD_FILE,
    LinearRewardHead,
    build_reward_model,
    ensure_distinct_pad_token,
    export_standard,
    load_reward_model,
    make_reward_head,
    save_reward_model,
    write_legacy_layout,
)

from helpers import build_tokenizer, synthetic_pair


def features_for(tokenizer, count=6, seed=0):
    import random

    rng = random.Random(seed)
    pairs = [PreferencePair(**synthetic_pair(rng)) for _ in range(count)]
    return tokenize_pairs(pairs, tokenizer, max_length=64)[0]


def test_pad_token_is_distinct_from_eos_and_end_of_turn():
    tokenizer = build_tokenizer()
    assert tokenizer.pad_token == tokenizer.eos_token == "<|im_end|>"
    assert ensure_distinct_pad_token(tokenizer) is False  # an existing token can serve
    assert tokenizer.pad_token == "<|endoftext|>" and tokenizer.pad_token_id != tokenizer.eos_token_id


def test_pad_token_added_when_no_candidate():
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.WordLevel(vocab={"a": 0, "</s>": 1, "[UNK]": 2}, unk_token="[UNK]"))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="</s>", pad_token="</s>")
    assert ensure_distinct_pad_token(tokenizer) is True
    assert tokenizer.pad_token == "<|pad|>" and len(tokenizer) == 4


def test_features_equal_full_chat_template_tokenization(tiny_llama):
    _, tokenizer = build_reward_model(str(tiny_llama))
    pair = PreferencePair(**synthetic_pair(__import__("random").Random(1)))
    features = tokenize_pairs([pair], tokenizer, max_length=64)[0][0]
    full = tokenizer.apply_chat_template(pair.prompt + pair.chosen, tokenize=True, return_dict=False)
    assert features.prompt_ids + features.chosen_ids == list(full)
    prompt = tokenizer.apply_chat_template(
        pair.prompt, tokenize=True, add_generation_prompt=True, return_dict=False
    )
    assert features.prompt_ids == list(prompt)


def test_over_long_pairs_truncate_prompt_or_drop(tiny_llama):
    _, tokenizer = build_reward_model(str(tiny_llama))
    long_prompt = [{"role": "user", "content": " ".join(["p1"] * 40)}]
    pairs = [
        PreferencePair(
            long_prompt,
            [{"role": "assistant", "content": "g1 g2"}],
            [{"role": "assistant", "content": "b1"}],
            row=1,
        ),
        PreferencePair(
            [],
            [{"role": "assistant", "content": " ".join(["g1"] * 40)}],
            [{"role": "assistant", "content": "b1"}],
            row=2,
        ),
    ]
    kept, report = tokenize_pairs(pairs, tokenizer, max_length=20)
    assert len(kept) == 1 and report.prompt_truncated == 1 and report.dropped_rows == [("", 2)]
    assert len(kept[0].prompt_ids) + len(kept[0].chosen_ids) == 20
    whole = tokenize_pairs(pairs[:1], tokenizer, max_length=1000)[0][0]
    assert (kept[0].chosen_ids, kept[0].rejected_ids) == (
        whole.chosen_ids,
        whole.rejected_ids,
    )  # responses whole
    assert kept[0].prompt_ids == whole.prompt_ids[-len(kept[0].prompt_ids) :]  # cut from the left
    dropped, report = tokenize_pairs(pairs, tokenizer, max_length=20, truncation="drop")
    assert dropped == [] and len(report.dropped_rows) == 2


@pytest.mark.parametrize("kind", ["standard", "grm"])
def test_left_and_right_padding_give_the_same_rewards_and_logps(tiny_llama, kind):
    model, tokenizer = build_reward_model(str(tiny_llama), kind=kind, head_type="linear")
    model.eval()
    features = features_for(tokenizer)
    outputs = {}
    for side in ("right", "left"):
        batch = PaddedPairCollator(tokenizer.pad_token_id, padding_side=side, with_logps=kind == "grm")(
            features
        )
        with torch.no_grad():
            outputs[side] = model(**{k: v for k, v in batch.items() if k != "margin"})
    torch.testing.assert_close(outputs["left"].rewards, outputs["right"].rewards, atol=1e-5, rtol=0)
    if kind == "grm":
        torch.testing.assert_close(outputs["left"].logps, outputs["right"].logps, atol=1e-4, rtol=1e-6)


def test_grm_logps_equal_full_logit_computation(tiny_llama):
    model, tokenizer = build_reward_model(str(tiny_llama), kind="grm", head_type="mlp")
    model.eval()
    features = features_for(tokenizer, count=3)
    batch = PaddedPairCollator(tokenizer.pad_token_id, with_logps=True)(features)
    with torch.no_grad():
        logps = model(**batch).logps
        for s, f in enumerate(features + features):
            response = f.chosen_ids if s < len(features) else f.rejected_ids
            ids = torch.tensor([f.prompt_ids + response])
            logits = model.transformer(input_ids=ids).logits[0].log_softmax(-1)
            start = len(f.prompt_ids)
            expected = sum(logits[t - 1, ids[0, t]].item() for t in range(start, ids.shape[1]))
            assert logps[s].item() == pytest.approx(expected, abs=1e-4)


def test_standard_checkpoint_scores_the_same_in_plain_transformers(tiny_llama, tmp_path):
    model, tokenizer = build_reward_model(str(tiny_llama))
    save_reward_model(model, tokenizer, tmp_path / "rm")
    plain = AutoModelForSequenceClassification.from_pretrained(tmp_path / "rm").eval()
    plain_tokenizer = AutoTokenizer.from_pretrained(tmp_path / "rm")
    assert plain.config.num_labels == 1 and plain.score.bias is None
    assert plain.config.pad_token_id == plain_tokenizer.pad_token_id != plain_tokenizer.eos_token_id
    rng = __import__("random").Random(3)
    conversations = [synthetic_pair(rng) for _ in range(5)]
    texts = [
        plain_tokenizer.apply_chat_template(c["prompt"] + c["chosen"], tokenize=False) for c in conversations
    ]
    encoded = plain_tokenizer(texts, padding=True, add_special_tokens=False, return_tensors="pt")
    with torch.no_grad():
        expected = plain(**encoded).logits[:, 0]
    ours = RewardScorer(tmp_path / "rm", batch_size=2).score(
        [c["prompt"] for c in conversations], [c["chosen"] for c in conversations]
    )
    torch.testing.assert_close(torch.tensor(ours), expected, atol=1e-5, rtol=0)


def test_head_init_gives_unit_norm_head(tiny_llama):
    torch.manual_seed(0)
    norms = [build_reward_model(str(tiny_llama))[0].head.weight.norm().item() for _ in range(5)]
    assert all(0.6 < n < 1.4 for n in norms)  # N(0, 1/(H+1)) over H = 32 → ‖W_p‖ ≈ 1


def test_grm_loading_is_strict(tiny_llama, tmp_path):
    model, tokenizer = build_reward_model(str(tiny_llama), kind="grm", head_type="mlp")
    save_reward_model(model, tokenizer, tmp_path / "grm")
    loaded, _ = load_reward_model(tmp_path / "grm")
    for a, b in zip(model.reward_head.state_dict().values(), loaded.reward_head.state_dict().values()):
        torch.testing.assert_close(a, b)
    with pytest.raises(ConfigError, match="has a mlp head, not linear"):
        load_reward_model(tmp_path / "grm", head_type="linear")
    meta = json.loads((tmp_path / "grm" / "rmguard.json").read_text())
    (tmp_path / "grm" / "rmguard.json").write_text(json.dumps({**meta, "head_type": "linear"}))
    with pytest.raises(ConfigError, match="reward head does not match a linear head"):
        load_reward_model(tmp_path / "grm")
    (tmp_path / "grm" / REWARD_HEAD_FILE).unlink()
    with pytest.raises(ConfigError, match="without reward_head"):
        load_reward_model(tmp_path / "grm")


def test_grm_linear_head_is_the_references_value_head():
    """GRM's ValueHead(vhead_layer_type='linear'): Dropout(0.1) then nn.Linear(H, 1) with bias, default init."""
    hidden = 32

    class ReferenceValueHead(nn.Module):  # reward_models/grm_utils.py, linear branch, written out
        def __init__(self):
            super().__init__()
            self.dropout = nn.Dropout(0.1)
            self.summary = nn.Linear(hidden, 1)

        def forward(self, x):
            return self.summary(self.dropout(x))

    torch.manual_seed(7)
    reference = ReferenceValueHead()
    torch.manual_seed(7)
    ours = make_reward_head("linear", hidden)
    assert ours.bias is not None and ours.dropout.p == 0.1
    torch.testing.assert_close(ours.weight, reference.summary.weight, atol=0, rtol=0)
    torch.testing.assert_close(ours.bias, reference.summary.bias, atol=0, rtol=0)
    assert set(ours.state_dict()) == {"weight", "bias"}
    x = torch.randn(5, hidden)
    for train in (True, False):  # the same dropout draw in training, none in evaluation
        reference.train(train), ours.train(train)
        torch.manual_seed(3)
        expected = reference(x)
        torch.manual_seed(3)
        torch.testing.assert_close(ours(x), expected, atol=0, rtol=0)
    torch.manual_seed(3)
    assert not torch.equal(ours.train()(x), ours.eval()(x))  # dropout is live in training


def test_grm_linear_head_round_trips_and_refuses_a_bias_free_head(tiny_llama, tmp_path):
    model, tokenizer = build_reward_model(str(tiny_llama), kind="grm", head_type="linear")
    save_reward_model(model, tokenizer, tmp_path / "grm")
    loaded, _ = load_reward_model(tmp_path / "grm")
    assert isinstance(loaded.reward_head, LinearRewardHead)
    torch.testing.assert_close(loaded.reward_head.weight, model.reward_head.weight, atol=0, rtol=0)
    torch.testing.assert_close(loaded.reward_head.bias, model.reward_head.bias, atol=0, rtol=0)
    legacy = {"weight": model.reward_head.weight.detach().clone()}
    save_file(legacy, str(tmp_path / "grm" / REWARD_HEAD_FILE))
    with pytest.raises(ConfigError, match=r"bias-free linear head.*missing \['bias'\]"):
        load_reward_model(tmp_path / "grm")


def test_grm_linear_exports_to_standard_checkpoint(tiny_llama, tmp_path):
    model, tokenizer = build_reward_model(str(tiny_llama), kind="grm", head_type="linear")
    with torch.no_grad():
        model.reward_head.bias.fill_(0.75)
    save_reward_model(model, tokenizer, tmp_path / "grm")
    assert export_standard(tmp_path / "grm", tmp_path / "std") == 0.75
    assert json.loads((tmp_path / "std" / "rmguard.json").read_text())["dropped_head_bias"] == 0.75
    rng = __import__("random").Random(4)
    rows = [synthetic_pair(rng) for _ in range(4)]
    prompts, responses = [r["prompt"] for r in rows], [r["rejected"] for r in rows]
    grm_scores = RewardScorer(tmp_path / "grm").score(prompts, responses)
    std_scores = RewardScorer(tmp_path / "std").score(prompts, responses)
    assert std_scores == pytest.approx([s - 0.75 for s in grm_scores], abs=1e-5)  # the bias, dropped
    assert AutoModelForSequenceClassification.from_pretrained(tmp_path / "std").config.num_labels == 1


def test_not_a_causal_lm_is_a_clear_error(tmp_path):
    from transformers import T5Config

    T5Config(d_model=16, num_layers=1, num_heads=2, d_ff=32, vocab_size=50).save_pretrained(tmp_path / "t5")
    with pytest.raises(ConfigError, match="not a causal LM"):
        build_reward_model(str(tmp_path / "t5"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="not a Hugging Face model folder"):
        build_reward_model(str(tmp_path / "empty"))
    with pytest.raises(ConfigError, match="not a reward-model checkpoint"):
        load_reward_model(tmp_path / "t5")


def test_causal_lm_still_loads_from_grm_checkpoint(tiny_llama, tmp_path):
    model, tokenizer = build_reward_model(str(tiny_llama), kind="grm")
    save_reward_model(model, tokenizer, tmp_path / "grm")
    lm = AutoModelForCausalLM.from_pretrained(tmp_path / "grm")
    assert lm.get_output_embeddings().weight.shape[0] == len(tokenizer)


def test_chat_template_can_be_overridden(tiny_llama, tmp_path):
    template = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }} {% endfor %}"
    _, tokenizer = build_reward_model(str(tiny_llama), chat_template=template)
    assert tokenizer.chat_template == template
    (tmp_path / "t.jinja").write_text(template)
    _, from_file = build_reward_model(str(tiny_llama), chat_template=str(tmp_path / "t.jinja"))
    pair = PreferencePair(
        [{"role": "user", "content": "p1"}],
        [{"role": "assistant", "content": "g1"}],
        [{"role": "assistant", "content": "b1"}],
    )
    features = tokenize_pairs([pair], from_file, max_length=64)[0][0]
    assert (
        features.prompt_ids + features.chosen_ids
        == from_file("user: p1 assistant: g1 ", add_special_tokens=False)["input_ids"]
    )


def test_checkpoint_files_read_the_same_in_transformers_4(tiny_llama, tmp_path):
    """The fields scripts/check_compat.py relies on (run there against transformers 4.51: equal to 3e-7)."""
    model, tokenizer = build_reward_model(str(tiny_llama))
    save_reward_model(model, tokenizer, tmp_path / "rm")
    config = json.loads((tmp_path / "rm" / "config.json").read_text())
    assert config["rope_theta"] == config["rope_parameters"]["rope_theta"]
    assert "rope_scaling" not in config  # default RoPE: 4.x must not see a scaling dict
    tokenizer_config = json.loads((tmp_path / "rm" / "tokenizer_config.json").read_text())
    assert tokenizer_config["tokenizer_class"] == "PreTrainedTokenizerFast"
    assert tokenizer_config["model_input_names"] == ["input_ids", "attention_mask"]
    assert not isinstance(tokenizer_config.get("extra_special_tokens"), list)
    scorer = RewardScorer(tmp_path / "rm")  # and 5.x still reads it as written
    assert (
        scorer.tokenizer.pad_token == tokenizer.pad_token
        and scorer.tokenizer("a")["input_ids"] == tokenizer("a")["input_ids"]
    )


def test_legacy_layout_copies_scaled_rope_and_refuses_per_layer_rope(tmp_path):
    scaled = {"rope_parameters": {"rope_theta": 5e5, "rope_type": "llama3", "factor": 8.0}}
    (tmp_path / "config.json").write_text(json.dumps(scaled))
    write_legacy_layout(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["rope_theta"] == 5e5 and config["rope_scaling"] == {"rope_type": "llama3", "factor": 8.0}
    per_layer = {
        "rope_parameters": {"full_attention": {"rope_theta": 1e6}, "sliding_attention": {"rope_theta": 1e4}}
    }
    (tmp_path / "config.json").write_text(json.dumps(per_layer))
    with pytest.raises(ConfigError, match="transformers 4.x"):
        write_legacy_layout(tmp_path)
