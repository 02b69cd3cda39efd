"""Packed [prompt | chosen | rejected] batches against the plain padded path: layout by hand, then exactness
of rewards, losses, GRM log-probs and gradients (fp32, 1e-5) on tiny Llama, Qwen2 and Gemma2 models.

Attention implementations: Llama and Qwen2 run SDPA (the default, and the CPU packed path) and Llama also
eager; Gemma2 runs eager, the implementation that applies its attention-logit soft-capping, with a
sliding window of 4 tokens so its sliding layers are exercised on sequences longer than the window.
"""

from __future__ import annotations

import random

import pytest
import torch

from rmguard.errors import ConfigError
from rmguard.scoring import RewardScorer
from rmguard.training.attention import PACKED_SDPA, enable_packed_attention
from rmguard.training.collate import PaddedPairCollator, ResponseCollator, pair_key
from rmguard.training.config import TrainConfig
from rmguard.training.features import PairFeatures, ResponseFeatures
from rmguard.training.loss import RewardLoss
from rmguard.training.modeling import build_reward_model
from rmguard.training.packing import PackedPairCollator, Segment, pack_segments, prompt_groups

from helpers import save_tiny_model

TOL = 1e-5


def test_layout_by_hand():
    # One pair: prompt [5, 6], chosen [7, 8], rejected [9]; then a pair with an empty prompt.
    features = [PairFeatures([5, 6], [7, 8], [9]), PairFeatures([], [10], [11, 12])]
    batch = PackedPairCollator(with_logps=True)(features)
    assert batch["input_ids"].tolist() == [[5, 6, 7, 8, 9, 10, 11, 12]]  # one row, no padding
    assert batch["position_ids"].tolist() == [[0, 1, 2, 3, 2, 0, 0, 1]]
    assert batch["reward_index"].tolist() == [[0, 3], [0, 5], [0, 4], [0, 7]]
    layout = batch["attention_mask"]
    # [prompt | chosen] is plain causal; rejected sees the prompt and itself, never the chosen tokens.
    assert [(b.queries, b.keys) for b in layout.blocks] == [
        ((0, 4), ((0, 4),)),
        ((4, 5), ((0, 2), (4, 5))),
        ((5, 6), ((5, 6),)),
        ((6, 8), ((6, 8),)),
    ]
    assert layout.block_mask(0, None, None) is None  # SDPA's is_causal kernel
    assert layout.block_mask(0, None, torch.float32)[0, 0].eq(0).int().tolist() == [
        [1, 0, 0, 0],
        [1, 1, 0, 0],
        [1, 1, 1, 0],
        [1, 1, 1, 1],
    ]
    assert layout.block_mask(1, None, None)[0, 0].int().tolist() == [[1, 1, 1]]
    # A sliding window of 2 positions: the rejected token (position 2) loses the prompt's first token.
    assert layout.block_mask(1, 2, None)[0, 0].int().tolist() == [[0, 1, 1]]
    # Chosen 7 is predicted by the prompt's last token (col 1), 8 by 7 (col 2); rejected 9 by col 1 too.
    # Empty prompt: first response tokens have no predictor; 12 is predicted by 11 (col 6).
    got = sorted(zip(batch["logp_seq"].tolist(), batch["logp_index"].tolist(), batch["logp_target"].tolist()))
    assert got == [(0, [0, 1], 7), (0, [0, 2], 8), (2, [0, 1], 9), (3, [0, 6], 12)]


def test_prompt_groups_share_prompts_in_first_seen_order():
    features = [ResponseFeatures([1], [2]), ResponseFeatures([3], [4]), ResponseFeatures([1], [5, 6])]
    groups = prompt_groups(features)
    assert [(list(g.prompt), list(g.responses), list(g.sequence_ids)) for g in groups] == [
        ([1], [[2], [5, 6]], [0, 2]),
        ([3], [[4]], [1]),
    ]


def _features(rng: random.Random, vocab: int, count: int) -> list[PairFeatures]:
    """Empty prompts, single-token responses and very different lengths, all in one batch."""
    shapes = [(0, 1, 1), (0, 5, 2), (1, 1, 9), (12, 1, 1), (3, 15, 2), (20, 4, 13)]
    shapes += [
        (rng.randint(0, 10), rng.randint(1, 10), rng.randint(1, 10)) for _ in range(count - len(shapes))
    ]
    ids = lambda n: [rng.randrange(4, vocab) for _ in range(n)]  # noqa: E731 (skip the special tokens)
    return [PairFeatures(ids(p), ids(c), ids(r)) for p, c, r in shapes]


def _run(model, batch, config):
    model.zero_grad()
    output = model(**{k: v for k, v in batch.items() if k != "margin"})
    loss, _ = RewardLoss(config)(output, batch)
    loss.backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    return output, loss.detach(), grads


# Llama and Qwen2 run SDPA, Llama also eager; Gemma 2 runs eager, which applies its soft-capping. Gemma 2
# and the second Qwen2 have sliding-window layers of window 4, shorter than most test sequences.
QWEN2_SLIDING = {"use_sliding_window": True, "sliding_window": 4, "max_window_layers": 1}
CASES = [
    ("llama", "sdpa", {}),
    ("llama", "eager", {}),
    ("qwen2", "sdpa", {}),
    ("qwen2", "sdpa", QWEN2_SLIDING),
    ("gemma2", "eager", {"sliding_window": 4}),
]


@pytest.mark.parametrize(
    ("family", "attention", "overrides"),
    CASES,
    ids=["llama-sdpa", "llama-eager", "qwen2-sdpa", "qwen2-sdpa-sliding", "gemma2-eager-sliding"],
)
@pytest.mark.parametrize("kind", ["standard", "grm"])
def test_packed_equals_padded(tmp_path, family, attention, overrides, kind):
    path = save_tiny_model(tmp_path / family, family=family, **overrides)
    model, tokenizer = build_reward_model(str(path), kind=kind, head_type="linear")
    model.transformer.set_attn_implementation(attention)
    model.eval()  # no dropout: both paths see the same function
    exact, _ = enable_packed_attention(model.transformer)
    assert exact
    if overrides.get("use_sliding_window"):
        assert "sliding_attention" in model.config.layer_types
    objective = "grm" if kind == "grm" else "bsr"
    config = TrainConfig(objective=objective, train_file="unused", head_type="linear")
    features = _features(random.Random(0), len(tokenizer), count=9)
    with_logps = kind == "grm"
    padded = PaddedPairCollator(tokenizer.pad_token_id, with_logps=with_logps)(features)
    packed = PackedPairCollator(with_logps=with_logps)(features)
    assert packed["input_ids"].numel() < padded["input_ids"].numel()
    out_pad, loss_pad, grads_pad = _run(model, padded, config)
    out_pack, loss_pack, grads_pack = _run(model, packed, config)
    torch.testing.assert_close(out_pack.rewards, out_pad.rewards, atol=TOL, rtol=0)
    torch.testing.assert_close(out_pack.hidden, out_pad.hidden, atol=TOL, rtol=0)
    torch.testing.assert_close(loss_pack, loss_pad, atol=TOL, rtol=0)
    if with_logps:
        torch.testing.assert_close(out_pack.logps, out_pad.logps, atol=TOL, rtol=0)
    assert grads_pack.keys() == grads_pad.keys() and grads_pad
    for name in grads_pad:
        torch.testing.assert_close(grads_pack[name], grads_pad[name], atol=TOL, rtol=0, msg=name)


def test_gradient_checkpointing_recomputes_packed_attention_exactly(tiny_llama):
    """Checkpointed layers run attention again in the backward pass, with the same layout."""
    model, tokenizer = build_reward_model(str(tiny_llama), kind="grm", head_type="linear")
    model.transformer.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    assert enable_packed_attention(model.transformer)[0]
    model.train()  # checkpointing is active in training mode only; the tiny model has no dropout
    model.reward_head.eval()  # the GRM head's own dropout (0.1, as the reference) would differ per run
    assert model.backbone.gradient_checkpointing
    config = TrainConfig(objective="grm", train_file="unused", head_type="linear")
    features = _features(random.Random(4), len(tokenizer), count=6)
    _, loss_pad, grads_pad = _run(
        model, PaddedPairCollator(tokenizer.pad_token_id, with_logps=True)(features), config
    )
    _, loss_pack, grads_pack = _run(model, PackedPairCollator(with_logps=True)(features), config)
    torch.testing.assert_close(loss_pack, loss_pad, atol=TOL, rtol=0)
    for name in grads_pad:
        torch.testing.assert_close(grads_pack[name], grads_pad[name], atol=TOL, rtol=0, msg=name)


def test_packed_attention_is_enabled_once_and_padded_batches_keep_the_models_own(tiny_llama):
    model, tokenizer = build_reward_model(str(tiny_llama))
    model.eval()
    features = _features(random.Random(1), len(tokenizer), count=8)
    padded = PaddedPairCollator(tokenizer.pad_token_id)(features)
    with torch.no_grad():
        before = model(**padded).rewards
        assert model.config._attn_implementation == "sdpa"
        with pytest.raises(ConfigError, match="packed attention was not enabled"):
            model(**PackedPairCollator()(features))  # never switched behind the caller's back
        assert enable_packed_attention(model.transformer)[0]
        assert model.config._attn_implementation == PACKED_SDPA
        packed = model(**PackedPairCollator()(features)).rewards
        after = model(**padded).rewards  # padded batches still run the model's own SDPA
    torch.testing.assert_close(packed, before, atol=TOL, rtol=0)
    torch.testing.assert_close(after, before, atol=0, rtol=0)


def test_models_without_an_exact_packed_form_say_why(tiny_llama):
    model, tokenizer = build_reward_model(str(tiny_llama))
    model.config.layer_types = ["full_attention", "chunked_attention"]
    exact, reason = enable_packed_attention(model.transformer)
    assert not exact and "chunked_attention" in reason
    batch = PackedPairCollator()(_features(random.Random(2), len(tokenizer), count=2))
    with pytest.raises(ConfigError, match="cannot run packed batches"):
        model(**batch)


def test_a_layout_lost_on_the_way_to_attention_is_an_error(tiny_llama):
    """A model whose layers drop keyword arguments must not run the packed row with no mask."""
    model, tokenizer = build_reward_model(str(tiny_llama))
    assert enable_packed_attention(model.transformer)[0]
    attention = model.backbone.layers[0].self_attn
    forward = attention.forward
    attention.forward = lambda *args, packed_attention=None, **kwargs: forward(*args, **kwargs)
    batch = PackedPairCollator()(_features(random.Random(3), len(tokenizer), count=2))
    with pytest.raises(ConfigError, match="does not pass keyword arguments"):
        model(**batch)


def test_scoring_shares_prompts_and_keeps_input_order(tiny_llama):
    model, tokenizer = build_reward_model(str(tiny_llama))
    prompts = ["p1 p2 p3", "p4", "p1 p2 p3", "", "p4", "p1 p2 p3"]
    responses = ["g1 g2", "b1", "b2 b3 b4 b5", "g3", "g4 g5", "b6"]
    packed = RewardScorer((model, tokenizer), batch_size=2, device="cpu")
    padded = RewardScorer((model, tokenizer), batch_size=4, device="cpu", packing=False)
    assert packed.packing and not padded.packing
    rewards, hidden = packed.score_with_hidden(prompts, responses)
    ref_rewards, ref_hidden = padded.score_with_hidden(prompts, responses)
    torch.testing.assert_close(rewards, ref_rewards, atol=TOL, rtol=0)
    torch.testing.assert_close(hidden, ref_hidden, atol=TOL, rtol=0)
    one_by_one = [padded.score([p], [r])[0] for p, r in zip(prompts, responses)]
    torch.testing.assert_close(rewards, torch.tensor(one_by_one), atol=TOL, rtol=0)


def test_pack_segments_of_many_responses_match_single_rows(tiny_llama):
    model, tokenizer = build_reward_model(str(tiny_llama))
    model.eval()
    assert enable_packed_attention(model.transformer)[0]
    prompt, responses = [10, 11, 12], [[20], [21, 22, 23], [24, 25]]
    packed = pack_segments([Segment(prompt, responses, [2, 0, 1]), Segment([], [[26, 27]], [3])])
    order = [responses[1], responses[2], responses[0]]
    features = [ResponseFeatures(prompt, r) for r in order] + [ResponseFeatures([], [26, 27])]
    padded = ResponseCollator(tokenizer.pad_token_id)(features)
    with torch.no_grad():
        torch.testing.assert_close(model(**packed).rewards, model(**padded).rewards, atol=TOL, rtol=0)


def test_sft_regularizer_needs_only_the_chosen_log_probs(tiny_llama):
    """GRM's SFT loss reads S(y_c) only: computing the chosen log-probs alone gives the same loss and
    gradients, packed or padded, and leaves every rejected log-prob at 0."""
    model, tokenizer = build_reward_model(str(tiny_llama), kind="grm", head_type="linear")
    model.eval()
    assert enable_packed_attention(model.transformer)[0]
    config = TrainConfig(objective="grm", train_file="unused", head_type="linear")
    features = _features(random.Random(5), len(tokenizer), count=5)
    full = PaddedPairCollator(tokenizer.pad_token_id, with_logps=True)(features)
    pairs = len(features)
    chosen_targets = int((full["logp_seq"] < pairs).sum())
    assert 0 < chosen_targets < len(full["logp_target"])
    out_all, loss_all, grads_all = _run(model, full, config)
    for collator in (
        PaddedPairCollator(tokenizer.pad_token_id, with_logps=True, chosen_logps_only=True),
        PackedPairCollator(with_logps=True, chosen_logps_only=True),
    ):
        batch = collator(features)
        assert len(batch["logp_target"]) == chosen_targets
        out, loss, grads = _run(model, batch, config)
        torch.testing.assert_close(out.logps[:pairs], out_all.logps[:pairs], atol=TOL, rtol=0)
        assert torch.all(out.logps[pairs:] == 0)
        torch.testing.assert_close(loss, loss_all, atol=TOL, rtol=0)
        for name in grads_all:
            torch.testing.assert_close(grads[name], grads_all[name], atol=TOL, rtol=0, msg=name)


def test_reference_log_probs_come_from_their_own_map_by_pair_tokens():
    features = [
        PairFeatures([5, 6], [7, 8], [9]),
        PairFeatures([], [10], [11, 12]),
        PairFeatures([5, 6], [7, 8], [9]),
    ]
    reference = {pair_key(features[0]): (-1.5, -2.5), pair_key(features[1]): (-3.0, -4.0)}
    for collator in (PackedPairCollator(reference=reference), PaddedPairCollator(0, reference=reference)):
        batch = collator(features)
        assert batch["ref_chosen_logps"].tolist() == [-1.5, -3.0, -1.5]
        assert batch["ref_rejected_logps"].tolist() == [-2.5, -4.0, -2.5]
    assert "ref_chosen_logps" not in PaddedPairCollator(0)(features)


def _last_mlp_rows(model) -> list[int]:
    """How many rows each call of the last layer's MLP received (a hook on a projection inside it: the MLP's
    own hooks see its caller's arguments)."""
    seen: list[int] = []
    mlp = model.backbone.layers[-1].mlp.up_proj
    handle = mlp.register_forward_hook(lambda module, args, out: seen.append(args[0].shape[:-1].numel()))
    return seen, handle


@pytest.mark.parametrize(("family", "attention", "overrides"), CASES[::2], ids=["llama", "qwen2", "gemma2"])
@pytest.mark.parametrize("kind", ["standard", "grm"])
@pytest.mark.parametrize("collator", ["packed", "padded"])
def test_last_layer_on_read_rows_only_equals_every_row(
    tmp_path, family, attention, overrides, kind, collator
):
    """The last layer's position-wise parts see only the reward tokens (and GRM's predicting tokens), and
    rewards, hidden states, log-probs, loss and every gradient equal those of the full last layer."""
    path = save_tiny_model(tmp_path / family, family=family, **overrides)
    model, tokenizer = build_reward_model(str(path), kind=kind, head_type="linear")
    model.transformer.set_attn_implementation(attention)
    assert enable_packed_attention(model.transformer)[0]
    model.eval()
    config = TrainConfig(objective="grm" if kind == "grm" else "bt", train_file="unused", head_type="linear")
    features = _features(random.Random(2), len(tokenizer), count=8)
    with_logps = kind == "grm"
    if collator == "packed":
        batch = PackedPairCollator(with_logps=with_logps)(features)
    else:
        batch = PaddedPairCollator(tokenizer.pad_token_id, with_logps=with_logps)(features)
    seen, handle = _last_mlp_rows(model)
    out_read, loss_read, grads_read = _run(model, batch, config)
    model.last_layer_rows_only = False
    out_all, loss_all, grads_all = _run(model, batch, config)
    handle.remove()
    read = {tuple(i) for i in batch["reward_index"].tolist()}
    read |= {tuple(i) for i in batch["logp_index"].tolist()} if with_logps else set()
    assert seen == [len(read), batch["input_ids"].numel()]
    torch.testing.assert_close(out_read.rewards, out_all.rewards, atol=TOL, rtol=0)
    torch.testing.assert_close(out_read.hidden, out_all.hidden, atol=TOL, rtol=0)
    if with_logps:
        torch.testing.assert_close(out_read.logps, out_all.logps, atol=TOL, rtol=0)
    torch.testing.assert_close(loss_read, loss_all, atol=TOL, rtol=0)
    assert grads_read.keys() == grads_all.keys() and grads_all
    for name in grads_all:
        torch.testing.assert_close(grads_read[name], grads_all[name], atol=TOL, rtol=0, msg=name)


def test_last_layer_runs_every_row_under_gradient_checkpointing_and_with_lora(tiny_llama):
    """Checkpointing runs the layer again after forward has returned, so it gets every row; a LoRA-wrapped
    projection is still found by its name and runs on the read rows only."""
    from peft import LoraConfig, get_peft_model

    model, tokenizer = build_reward_model(str(tiny_llama))
    assert enable_packed_attention(model.transformer)[0]
    features = _features(random.Random(3), len(tokenizer), count=4)
    batch = PackedPairCollator()(features)
    config = TrainConfig(objective="bt", train_file="unused")
    model.transformer.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    seen, handle = _last_mlp_rows(model)
    _run(model, batch, config)
    assert seen[0] == batch["input_ids"].numel()
    handle.remove()
    model.transformer.gradient_checkpointing_disable()
    lora = LoraConfig(r=4, target_modules=["q_proj", "o_proj", "up_proj"], task_type="SEQ_CLS")
    model.hf_model = get_peft_model(model.hf_model, lora)
    model.eval()
    calls: list[int] = []
    q_proj = model.backbone.layers[-1].self_attn.q_proj.base_layer  # inside the LoRA wrapper
    q_proj.register_forward_hook(lambda module, args, out: calls.append(args[0].shape[:-1].numel()))
    out_read, _, _ = _run(model, batch, config)
    model.last_layer_rows_only = False
    out_all, _, _ = _run(model, batch, config)
    assert calls == [len(features) * 2, batch["input_ids"].numel()]
    torch.testing.assert_close(out_read.rewards, out_all.rewards, atol=TOL, rtol=0)


def test_a_deep_copy_runs_its_own_last_layer_on_the_read_rows(tiny_llama):
    """The hooks travel with a deep copy (a reference model, an EMA copy) and run the copy's own weights."""
    import copy

    model, tokenizer = build_reward_model(str(tiny_llama))
    assert enable_packed_attention(model.transformer)[0]
    model.eval()
    batch = PackedPairCollator()(_features(random.Random(5), len(tokenizer), count=4))
    inputs = {k: v for k, v in batch.items() if k != "margin"}
    with torch.no_grad():
        before = model(**inputs).rewards  # installs the hooks
        twin = copy.deepcopy(model)
        twin.backbone.layers[-1].mlp.down_proj.weight.mul_(2.0)
        seen, handle = _last_mlp_rows(twin)
        changed = twin(**inputs).rewards
        handle.remove()
        twin.last_layer_rows_only = False
        changed_all_rows = twin(**inputs).rewards
        torch.testing.assert_close(model(**inputs).rewards, before, atol=0, rtol=0)
    assert seen == [len(batch["reward_index"])]
    torch.testing.assert_close(changed, changed_all_rows, atol=TOL, rtol=0)
    assert not torch.allclose(changed, before)
