"""Reuse of the frozen part's outputs (training/frozen_prefix.py): a run that reuses them equals the same
run without (rewards and weights within 1e-5 in fp32), for BT, BSR and GRM, padded and packed, with LoRA;
the reused forward really skips the frozen layers; what could not be exact is refused in one line."""

from __future__ import annotations

import copy
import random

import pytest
import torch
from safetensors.torch import load_file

from rmguard.errors import ConfigError
from rmguard.training import frozen_prefix
from rmguard.training.attention import enable_packed_attention
from rmguard.training.collate import PaddedPairCollator
from rmguard.training.config import load_config
from rmguard.training.modeling import build_reward_model, freeze_bottom_layers
from rmguard.training.packing import PackedPairCollator
from rmguard.training.tokenization import PairFeatures
from rmguard.training.trainer import model_inputs, train

from helpers import save_tiny_model

LAYERS = 4
FROZEN = 2


@pytest.fixture(scope="module")
def tiny_deep(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("tiny-deep"), num_hidden_layers=LAYERS)


def _frozen_model(path, kind="standard"):
    torch.manual_seed(0)
    model, _ = build_reward_model(str(path), kind, "linear")
    assert enable_packed_attention(model.transformer)[0]
    model.transformer.get_input_embeddings().weight.requires_grad_(False)
    freeze_bottom_layers(model, FROZEN)
    return model.eval()


def _pairs(count: int, vocab: int, seed: int = 0) -> list[PairFeatures]:
    rng = random.Random(seed)
    prompts = [[rng.randrange(4, vocab) for _ in range(rng.randint(2, 6))] for _ in range(3)]
    return [
        PairFeatures(
            rng.choice(prompts),
            [rng.randrange(4, vocab) for _ in range(rng.randint(1, 7))],
            [rng.randrange(4, vocab) for _ in range(rng.randint(1, 7))],
        )
        for _ in range(count)
    ]


@pytest.mark.parametrize("family", ["llama", "gemma2"])
def test_a_reused_forward_equals_the_full_one_in_every_layout(tmp_path, family):
    path = save_tiny_model(tmp_path, family, num_hidden_layers=LAYERS, sliding_window=4)
    frozen_prefix.forget()
    plain, reused = _frozen_model(path, "grm"), _frozen_model(path, "grm")
    store = frozen_prefix.attach(reused, FROZEN)
    pairs = _pairs(8, plain.config.vocab_size)
    collators = [
        PaddedPairCollator(0, "right", with_logps=True),
        PaddedPairCollator(0, "left", with_logps=True),
        PackedPairCollator(with_logps=True),
    ]
    calls = []
    for layer in reused.backbone.layers[:FROZEN]:
        layer.mlp.register_forward_hook(lambda *_: calls.append(1))
    for collator in [collators[0], *collators]:  # the first pass fills the store, then every layout reads it
        batch = model_inputs(collator(pairs))
        with torch.no_grad():
            want, got = plain(**batch), reused(**batch)
        for name in ("rewards", "hidden", "logps"):
            torch.testing.assert_close(getattr(got, name), getattr(want, name), atol=1e-5, rtol=1e-5)
    assert (store.misses, store.hits) == (1, 3)
    assert len(calls) == FROZEN  # the frozen layers ran in the first forward only
    # a prompt shared by several responses is one context: far fewer states than tokens
    tokens = sum(len(p.prompt_ids) + len(p.chosen_ids) + len(p.rejected_ids) for p in pairs)
    assert store.contexts < tokens


def test_a_new_context_runs_in_full_and_joins_the_store(tiny_deep):
    frozen_prefix.forget()
    model = _frozen_model(tiny_deep)
    store = frozen_prefix.attach(model, FROZEN)
    first, second = _pairs(4, model.config.vocab_size, 0), _pairs(4, model.config.vocab_size, 1)
    collate = PaddedPairCollator(0)
    with torch.no_grad():
        model(**model_inputs(collate(first)))
        seen = store.contexts
        mixed = model(**model_inputs(collate(first[:2] + second[:2]))).rewards
        again = model(**model_inputs(collate(first[:2] + second[:2]))).rewards
    assert store.contexts > seen and (store.misses, store.hits) == (2, 1)
    assert copy.deepcopy(model).frozen_outputs is store  # a copy shares the one store of its frozen part
    torch.testing.assert_close(again, mixed, atol=1e-5, rtol=1e-5)


def test_gather_lays_out_the_batchs_states_and_zeros_elsewhere():
    """Node k's state is row k − 1 of the store, node 0 (no token) a zero row, in the model's dtype."""
    store = frozen_prefix.FrozenOutputs(2, "x")
    states = torch.arange(5 * 3, dtype=torch.float32).reshape(5, 3)
    store._children = {(0, t): t + 1 for t in range(5)}
    store._chunks = [states]
    found = torch.tensor([[0, 3, 1], [5, 0, 0]])
    gathered = store.gather(found, torch.empty(0, dtype=torch.float64))
    expected = torch.cat([torch.zeros(1, 3), states])[found].double()
    assert gathered.dtype == torch.float64 and torch.equal(gathered, expected)


def _train_config(path, data, out, **overrides):
    values = dict(
        model_name_or_path=str(path),
        train_file=str(data["train"]),
        output_dir=str(out),
        learning_rate=3e-3,
        num_train_epochs=3,
        per_device_train_batch_size=8,
        freeze_embeddings=True,
        freeze_layers=FROZEN,
        disable_tqdm=True,
        report_to=["none"],
        seed=0,
    )
    return load_config(None, {**values, **overrides})


RUNS = {
    "bt-padded": {"objective": "bt", "packing": False},
    "bsr-packed": {"objective": "bsr", "packing": True},
    "grm-packed": {"objective": "grm", "head_type": "linear", "packing": True},
    "grm-padded-mlp": {"objective": "grm", "packing": False},
    "bt-lora": {"objective": "bt", "use_peft": True, "lora_dropout": 0.0},
}


@pytest.mark.parametrize("overrides", RUNS.values(), ids=RUNS.keys())
def test_training_with_reuse_equals_training_without(tiny_deep, synthetic_data, tmp_path, overrides):
    frozen_prefix.forget()
    plain = train(_train_config(tiny_deep, synthetic_data, tmp_path / "plain", **overrides))
    reused = train(
        _train_config(tiny_deep, synthetic_data, tmp_path / "reused", reuse_frozen_outputs=True, **overrides)
    )
    store = frozen_prefix._KEPT[next(iter(frozen_prefix._KEPT))]
    assert store.hits >= 2 * store.misses  # epochs 2 and 3 read every batch from the store
    files = sorted(p.name for p in (tmp_path / "plain").glob("*.safetensors"))
    assert files
    for name in files:
        want, got = load_file(tmp_path / "plain" / name), load_file(tmp_path / "reused" / name)
        assert want.keys() == got.keys()
        for key in want:
            torch.testing.assert_close(got[key], want[key], atol=1e-5, rtol=0, msg=f"{name}:{key}")
    assert plain.global_step == reused.global_step


def test_what_reuse_cannot_make_exact_is_refused(tiny_deep, synthetic_data, tmp_path):
    with pytest.raises(ConfigError, match="needs freeze_embeddings and freeze_layers"):
        _train_config(
            tiny_deep, synthetic_data, tmp_path, freeze_layers=0, reuse_frozen_outputs=True
        ).validate()
    model = _frozen_model(tiny_deep)
    model.backbone.layers[1].mlp.up_proj.weight.requires_grad_(True)
    with pytest.raises(ConfigError, match="layer 1 has trainable parameters"):
        frozen_prefix.attach(model, FROZEN)
    model = _frozen_model(tiny_deep)
    model.config.attention_dropout = 0.1
    with pytest.raises(ConfigError, match="dropout"):
        frozen_prefix.attach(model, FROZEN)
    with pytest.raises(ConfigError, match="freeze_layers < the model's layers"):
        frozen_prefix.attach(_frozen_model(tiny_deep), LAYERS)


def test_a_saved_store_serves_another_process_as_its_own(tiny_deep, tmp_path):
    frozen_prefix.forget()
    model = _frozen_model(tiny_deep)
    store = frozen_prefix.attach(model, FROZEN)
    batch = model_inputs(PaddedPairCollator(0)(_pairs(6, model.config.vocab_size)))
    with torch.no_grad():
        want = model(**batch).rewards
    frozen_prefix.save(store, tmp_path / "frozen.pt")
    frozen_prefix.forget()
    loaded = frozen_prefix.load(tmp_path / "frozen.pt")
    other = _frozen_model(tiny_deep)
    assert frozen_prefix.attach(other, FROZEN) is loaded and loaded.contexts == store.contexts
    with torch.no_grad():
        got = other(**batch).rewards
    assert (loaded.hits, loaded.misses) == (1, 0)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
