"""What a run trains is decided once (training/run.py): the description of each shipped objective, and a new
objective that needs a new batch field added with objectives.py's registries alone, then trained."""

from __future__ import annotations

import csv

import pytest
import torch

from rmguard.cli import main
from rmguard.errors import ConfigError
from rmguard.training.config import load_config
from rmguard.training.objectives import PAIR_FIELDS, REWARD_OBJECTIVES, Objective, PairField
from rmguard.training.packing import make_pair_collator
from rmguard.training.run import BatchNeeds, describe
from rmguard.training.tokenization import PairFeatures


def _describe(**values):
    return load_config(None, {"train_file": "p", **values}).validate()


def test_each_objective_is_described_once():
    bt = _describe()
    assert (bt.objective, bt.regularizer, bt.kind, bt.head_type, bt.extra_head) == (
        "bt",
        None,
        "standard",
        "linear",
        None,
    )
    assert bt.batch == BatchNeeds()
    grm = _describe(objective="grm")  # the preset: bt + the SFT regularizer, an MLP head on a causal LM
    assert (grm.objective, grm.regularizer, grm.kind, grm.head_type) == ("bt", "sft", "grm", "mlp")
    assert grm.batch == BatchNeeds(logps="chosen") and grm.trains_lm_head
    dpo = _describe(objective="bsr", grm_regularizer="dpo", head_type="linear")
    assert (dpo.objective, dpo.kind, dpo.head_type) == ("bsr", "grm", "linear")
    assert dpo.batch == BatchNeeds(logps="both", reference_logps=True)
    mlp_only = _describe(head_type="mlp")  # an MLP head needs a GRM model, but nothing reads log-probs
    assert mlp_only.kind == "grm" and not mlp_only.trains_lm_head
    odin = _describe(objective="odin")
    assert (odin.kind, odin.extra_head, odin.batch) == ("standard", "length", BatchNeeds(fields=("length",)))
    inform = _describe(objective="inform", inform_latent_dim=8)
    assert (inform.kind, inform.extra_head, inform.batch) == ("standard", "latent", BatchNeeds())
    assert inform.settings.inform_latent_dim == 8 and inform.settings.inform_beta == 0.1


def test_combinations_that_cannot_train_are_one_line():
    with pytest.raises(ConfigError, match="objective odin trains a standard reward model"):
        _describe(objective="odin", grm_regularizer="sft")
    with pytest.raises(ConfigError, match="objective inform trains a standard reward model"):
        _describe(objective="inform", head_type="mlp")
    with pytest.raises(ConfigError, match="unknown objective 'grn'; choose one of grm, bt, bsr"):
        _describe(objective="grn")
    with pytest.raises(ConfigError, match="takes no margin"):
        _describe(objective="bt_norm", margin=1.0)


@pytest.fixture
def prompt_tokens_objective():
    """A per-pair field (prompt + response tokens) and an objective that reads it, registered for one test.

    L = |mean_i[(T_c,i − T_r,i) − (ℓ_c,i − ℓ_r,i)]| + 1 + 0·Σ r: both responses of a pair share the prompt,
    so the first term is 0 exactly when each field holds its own response's value, and L = 1."""
    PAIR_FIELDS.register(
        "total_tokens", PairField(lambda pair, response: len(pair.prompt_ids) + len(response), "T")
    )

    def loss(b, s):
        (t_c, t_r), (l_c, l_r) = b.fields["total_tokens"], b.fields["length"]
        return ((t_c - t_r) - (l_c - l_r)).mean().abs() + 1 + 0 * (b.chosen.sum() + b.rejected.sum())

    REWARD_OBJECTIVES.register(
        "prompt_check", Objective(loss, takes_margin=False, reads=frozenset({"total_tokens", "length"}))
    )
    yield
    del REWARD_OBJECTIVES["prompt_check"], PAIR_FIELDS["total_tokens"]


def test_an_objective_with_a_new_batch_field_is_registered_and_trained(
    prompt_tokens_objective, tiny_llama, synthetic_data, tmp_path
):
    spec = _describe(objective="prompt_check")
    assert spec.batch.fields == ("length", "total_tokens")
    features = [PairFeatures([1, 2, 3], [4, 5], [6]), PairFeatures([7], [8], [9, 10, 11])]
    for packed in (True, False):
        batch = make_pair_collator(packed, 0, spec.batch)(features)
        assert torch.equal(batch["chosen_total_tokens"], torch.tensor([5.0, 2.0]))
        assert torch.equal(batch["rejected_total_tokens"], torch.tensor([4.0, 4.0]))
        assert torch.equal(batch["rejected_length"], torch.tensor([1.0, 3.0]))
    out = tmp_path / "rm"
    args = ["--model_name_or_path", str(tiny_llama), "--train_file", str(synthetic_data["train"])]
    args += ["--output_dir", str(out), "--objective", "prompt_check", "--max_steps", "2"]
    args += ["--per_device_train_batch_size", "4", "--logging_steps", "1", "--disable_tqdm"]
    assert main(["train", *args]) == 0
    with (out / "logs" / "metrics.csv").open() as handle:
        losses = [float(row["value"]) for row in csv.DictReader(handle) if row["metric"] == "train/loss"]
    assert losses == pytest.approx([1.0, 1.0], abs=1e-6)


def test_describe_reads_a_config_built_in_python():
    from rmguard.training.config import TrainConfig

    config = TrainConfig(train_file="p", objective="inform")
    config.hyperparameters["inform_beta"] = 0.5
    spec = describe(config)
    assert spec.settings.inform_beta == 0.5 and spec.settings.inform_latent_dim == 128
