"""The packed attention is checked against the model's own function on the device it runs on before it is
switched on; a packed path that does not agree there falls back to padded batches with the reason."""

from __future__ import annotations

import torch

from rmguard.training import attention
from rmguard.training.attention import PACKED_SDPA, enable_packed_attention, probe_packed_attention
from rmguard.training.modeling import build_reward_model


def test_the_probe_accepts_the_packed_attention_in_fp32_and_bf16(tiny_llama):
    model, _ = build_reward_model(str(tiny_llama))
    assert probe_packed_attention(model.transformer, PACKED_SDPA) is None
    model.to(torch.bfloat16)  # within 8 units of bf16's roundoff (2^-8)
    assert probe_packed_attention(model.transformer, PACKED_SDPA) is None


def test_a_packed_path_that_disagrees_falls_back_with_its_reason(tiny_llama, monkeypatch):
    model, _ = build_reward_model(str(tiny_llama))
    # A backend whose kernel aligns the causal mask top-left for a block of 4 queries over 9 keys (what
    # is_causal with no mask does): the later responses would lose most of their prompt.
    monkeypatch.setattr(attention.PackedAttention, "block_mask", lambda self, index, window, dtype: None)
    exact, reason = enable_packed_attention(model.transformer)
    assert not exact
    assert reason.startswith("packed attention differs from the model's own on cpu in torch.float32 by ")
    assert model.config._attn_implementation == "sdpa"  # left as it was: padded batches


def test_the_scorer_logs_why_it_scores_padded_batches(tiny_llama, monkeypatch, caplog):
    from rmguard.scoring import RewardScorer

    model, tokenizer = build_reward_model(str(tiny_llama))
    monkeypatch.setattr(attention.PackedAttention, "block_mask", lambda self, index, window, dtype: None)
    with caplog.at_level("WARNING", logger="rmguard.scoring"):
        scorer = RewardScorer((model, tokenizer), device="cpu")
    assert not scorer.packing
    assert "packing off: packed attention differs from the model's own on cpu" in caplog.text
