"""WARM: weight-averaged reward models (Ramé et al. 2024).

Reward models fine-tuned from one initialisation stay linearly connected, so the average of their weights
is itself a good reward model, and a more robust one than any member: one model's cost at scoring time,
the ensemble's robustness to distribution shift and label noise.

One initialisation means the same pretrained weights: rmguard records their fingerprint
(``init_fingerprint`` in rmguard.json, :func:`~rmguard.training.modeling.weights_fingerprint` of the
backbone before training) in every checkpoint it trains, merges or exports. Members that all carry it must
agree on it; otherwise all must record the same ``base_model_name_or_path`` and ``num_hidden_layers``; a
member that records neither is refused, as are members of different architecture (kind, heads, keys or
shapes) or tokenizer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from rmguard.errors import ConfigError
from rmguard.fileio import check_outputs
from rmguard.training.modeling import (
    RewardModel,
    load_reward_model,
    read_metadata,
    save_reward_model,
    saved_dtype,
)
from rmguard.training.pretrained import resolve_model_path


def average_state_dicts(
    state_dicts: Sequence[Mapping[str, Tensor]], names: Sequence[str] | None = None
) -> dict[str, Tensor]:
    """θ_WARM = (1/M) Σ_i θ_i over M state dicts with the same keys and shapes (WARM's uniform average).

    Floating-point tensors are averaged in float64 and cast back to their own dtype; any other tensor (an
    integer buffer) must be equal in every member and is kept. Members that differ in keys, shapes or
    dtypes are refused with one line naming the first difference; ``names`` label the members in it
    (default: model 1, model 2 ...).
    """
    names = list(names) if names is not None else [f"model {i + 1}" for i in range(len(state_dicts))]
    if len(state_dicts) < 2:
        raise ConfigError(f"averaging needs at least two models, got {len(state_dicts)}")
    first, first_name = state_dicts[0], names[0]
    for other, name in zip(state_dicts[1:], names[1:]):
        _check_same_layout(first, first_name, other, name)
    averaged = {}
    for key, tensor in first.items():
        if tensor.is_floating_point():
            total = sum(sd[key].to(torch.float64) for sd in state_dicts)
            averaged[key] = (total / len(state_dicts)).to(tensor.dtype)
        else:
            for sd, name in zip(state_dicts[1:], names[1:]):
                if not torch.equal(sd[key], tensor):
                    raise ConfigError(f"{name}: '{key}' differs from {first_name}'s and is not a weight")
            averaged[key] = tensor.clone()
    return averaged


def _check_same_layout(
    first: Mapping[str, Tensor], first_name: str, other: Mapping[str, Tensor], name: str
) -> None:
    missing, extra = sorted(set(first) - set(other)), sorted(set(other) - set(first))
    if missing or extra:
        what = f"lacks '{missing[0]}'" if missing else f"has '{extra[0]}' that {first_name} lacks"
        raise ConfigError(f"{name} {what}: models of different architecture cannot be averaged")
    for key, tensor in first.items():
        if other[key].shape != tensor.shape or other[key].dtype != tensor.dtype:
            raise ConfigError(
                f"{name}: '{key}' is {tuple(other[key].shape)} {other[key].dtype}, {first_name}'s is "
                f"{tuple(tensor.shape)} {tensor.dtype}: models of different architecture cannot be averaged"
            )


def average_reward_models(paths: Sequence[str | Path], output_dir: str | Path) -> dict[str, Any]:
    """``rmguard average``: the WARM average of reward-model checkpoints, written as a checkpoint of the
    members' own layout (a standard one reads with plain transformers; GRM and ODIN heads are averaged
    too). LoRA members are merged into their base first. Returns the metadata written to rmguard.json."""
    names = [str(path) for path in paths]
    if len(names) < 2:
        raise ConfigError(f"averaging needs at least two models, got {len(names)}")
    check_outputs([output_dir], names, folders=True)
    metas = [read_metadata(path) for path in names]
    models = [_load_merged(path) for path in names]
    _check_same_layout_and_tokenizer(names, models)
    _check_same_initialisation(names, metas, [model for model, _ in models])
    averaged = average_state_dicts([model.state_dict() for model, _ in models], names)
    base, tokenizer = models[0]
    base.load_state_dict(averaged, strict=True)
    first = metas[0]
    meta = {
        "objective": "warm",
        "warm_members": names,
        "warm_member_objectives": [m.get("objective") for m in metas],
        "base_model_name_or_path": first.get("base_model_name_or_path"),
        "num_hidden_layers": first.get("num_hidden_layers"),
    }
    save_reward_model(base, tokenizer, output_dir, meta)
    return meta


def _load_merged(path: str) -> tuple[RewardModel, Any]:
    meta = read_metadata(path)
    # a LoRA folder holds no config.json: its weights' dtype is its base model's
    dtype_source = resolve_model_path(meta["base_model_name_or_path"]) if meta.get("peft") else path
    model, tokenizer = load_reward_model(path, dtype=saved_dtype(dtype_source))
    if model.hf_model is not model.transformer:  # LoRA: average the merged weights
        model.hf_model = model.hf_model.merge_and_unload()
    return model, tokenizer


def _check_same_initialisation(
    names: list[str], metas: list[dict[str, Any]], models: list[RewardModel]
) -> None:
    fingerprints = [model.init_fingerprint for model in models]
    if all(fingerprints):
        for name, fingerprint in zip(names[1:], fingerprints[1:]):
            if fingerprint != fingerprints[0]:
                raise ConfigError(
                    f"{name} was fine-tuned from other weights than {names[0]} (init_fingerprint "
                    f"{fingerprint} ≠ {fingerprints[0]}): WARM averages models of one initialisation"
                )
        return
    bases = [(m.get("base_model_name_or_path"), m.get("num_hidden_layers")) for m in metas]
    for name, base in zip(names, bases):
        if base[0] is None:
            raise ConfigError(
                f"{name} records no initialisation (no init_fingerprint or base_model_name_or_path in "
                "rmguard.json): WARM averages only models fine-tuned from one initialisation"
            )
        if base != bases[0]:
            raise ConfigError(
                f"{name} was fine-tuned from {base[0]} ({base[1]} layers), {names[0]} from {bases[0][0]} "
                f"({bases[0][1]} layers): WARM averages models of one initialisation"
            )


def _check_same_layout_and_tokenizer(names: list[str], models: list[tuple[RewardModel, Any]]) -> None:
    def layout(model: RewardModel) -> tuple[str, str, bool, int | None, str]:
        latent = None if model.latent_head is None else model.latent_head.latent_dim
        return model.kind, model.head_type, model.length_head is not None, latent, model.config.model_type

    first, vocab = models[0][0], models[0][1].get_vocab()
    for name, (model, tokenizer) in zip(names[1:], models[1:]):
        if layout(model) != layout(first):
            raise ConfigError(
                f"{name} is a {_describe(model)} reward model, {names[0]} a {_describe(first)} one: "
                "models of different architecture cannot be averaged"
            )
        if tokenizer.get_vocab() != vocab:
            raise ConfigError(f"{name} has another tokenizer than {names[0]}: their weights do not align")


def _describe(model: RewardModel) -> str:
    odin = " ODIN" if model.length_head is not None else ""
    inform = f" InfoRM (d = {model.latent_head.latent_dim})" if model.latent_head is not None else ""
    return f"{model.config.model_type} {model.kind}{odin}{inform} ({model.head_type} head)"
