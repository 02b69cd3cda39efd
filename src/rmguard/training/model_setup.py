"""The model a run trains, as its description says: a fresh reward model on a causal LM or an rmguard
checkpoint to continue, with the extra head, the frozen parts, LoRA, checkpointing and packed attention."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from rmguard.errors import ConfigError
from rmguard.training import frozen_prefix
from rmguard.training.attention import enable_packed_attention
from rmguard.training.config import TrainConfig
from rmguard.training.heads import HEAD_BUILDERS
from rmguard.training.modeling import (
    RewardModel,
    add_lora,
    build_reward_model,
    freeze_bottom_layers,
    is_reward_checkpoint,
    load_reward_model,
    saved_dtype,
)
from rmguard.training.pretrained import resolve_model_path
from rmguard.training.run import RunSpec, describe
from rmguard.training.sharding import sharding_plan


def load_model(
    config: TrainConfig, log: Callable[[str], None], run: RunSpec | None = None
) -> tuple[RewardModel, Any, bool]:
    """(model, tokenizer, whether batches are packed) for ``run`` (by default the config's description):
    the model is switched to its packed attention here, once, when the config asks for packing and packing
    is exact for it."""
    run = run or describe(config)
    model, tokenizer = _load_weights(config, run)
    if config.attn_implementation:
        model.transformer.set_attn_implementation(config.attn_implementation)
    if config.disable_dropout:
        for module in model.modules():  # as TRL's disable_dropout_in_model
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
    packed = False
    if config.packing and config.attn_implementation not in (None, "sdpa", "eager"):
        log(f"packing off: attn_implementation {config.attn_implementation} has no exact packed form")
    elif config.packing:
        packed, reason = enable_packed_attention(model.transformer)
        if not packed:
            log(f"packing off: {reason}; using padded batches")
    if config.reuse_frozen_outputs:
        frozen_prefix.attach(model, config.freeze_layers)
    return model, tokenizer, packed


def _model_dtype(config: TrainConfig, path: str) -> torch.dtype:
    return saved_dtype(path) if config.dtype == "auto" else getattr(torch, config.dtype)


_HEAD_NAMES = {"length": "ODIN's length head", "latent": "InfoRM's latent head"}


def _extra_head(model: RewardModel) -> str | None:
    if model.length_head is not None:
        return "length"
    return "latent" if model.latent_head is not None else None


def _load_weights(config: TrainConfig, run: RunSpec) -> tuple[RewardModel, Any]:
    """The reward model to train: an rmguard checkpoint to continue, or a fresh one on a causal LM."""
    path = resolve_model_path(config.model_name_or_path)
    dtype = _model_dtype(config, path)
    if not is_reward_checkpoint(path):
        return _build_model(config, run, path, dtype)
    model, tokenizer = load_reward_model(path, head_type=config.head_type, dtype=dtype)
    if model.kind != run.kind:
        raise ConfigError(
            f"{path} is a {model.kind} reward model, but the config asks for "
            f"{'a GRM' if run.kind == 'grm' else 'a standard'} one"
        )
    found = _extra_head(model)
    if found != run.extra_head:
        has = f"has {_HEAD_NAMES[found]}" if found else f"has no {_HEAD_NAMES[run.extra_head]}"
        raise ConfigError(f"{path} {has}, but the objective is {config.objective}")
    return model, tokenizer


def _build_model(config: TrainConfig, run: RunSpec, path: str, dtype: torch.dtype) -> tuple[RewardModel, Any]:
    """A fresh reward model on a causal LM, with the run's head and the config's LM-head, LoRA and
    checkpointing settings."""
    model, tokenizer = build_reward_model(
        path, run.kind, run.head_type, config.num_hidden_layers, config.chat_template, dtype
    )
    if run.extra_head is not None:
        HEAD_BUILDERS[run.extra_head](model, run.settings)
    if model.kind == "grm":
        model.transformer.get_output_embeddings().weight.requires_grad_(
            config.train_lm_head and run.trains_lm_head
        )
    if config.freeze_embeddings:
        model.transformer.get_input_embeddings().weight.requires_grad_(False)
    if config.use_peft:
        add_lora(model, config.lora_r, config.lora_alpha, config.lora_dropout, config.lora_target_modules)
    if config.freeze_layers:  # after LoRA, whose adapters in these layers must stay frozen too
        freeze_bottom_layers(model, config.freeze_layers)
    if config.gradient_checkpointing or _fsdp_checkpointing(config):
        model.transformer.gradient_checkpointing_enable()
    return model, tokenizer


def _fsdp_checkpointing(config: TrainConfig) -> bool:
    """fsdp_config's activation_checkpointing: the decoder layers recompute in backward (transformers'
    checkpointing; each layer's FSDP unit gathers its parameters again for the recomputation)."""
    plan = sharding_plan(config.fsdp, config.fsdp_config)
    return plan is not None and plan.activation_checkpointing
