"""FSDP2: the reward model sharded with ``torch.distributed.fsdp.fully_shard``, and gathered back for saving.

The settings are TrainingArguments' (``fsdp: "full_shard auto_wrap"``, ``fsdp_config``), or those of an
``accelerate launch --config_file`` with ``distributed_type: FSDP`` (its ``FSDP_*`` environment). rmguard
calls ``fully_shard`` itself, as Accelerate's FSDP2 plugin does (each decoder layer, then the whole
model), because Accelerate turns its FSDP plugin off on CPU processes (``AcceleratorState`` sets FSDP
only for GPU-like devices) while torch's ``fully_shard`` trains on gloo: one code path, the one tested on
CPUs here, runs on GPUs too. Accelerate still launches, shards the data, accumulates and logs.

The root unit holds what is outside the decoder layers: embeddings, final norm, the reward head (``score``
or GRM's head) and GRM's LM head. Saving gathers a full state dict (every rank takes part, rank 0 keeps
it) in the plain transformers layout; loading hands the full state dict back to the shards.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rmguard.errors import ConfigError
from rmguard.optional import LazyModule

if TYPE_CHECKING:
    import torch
    from torch import nn
else:  # imported at first use: TrainConfig's checks read sharding_plan before any training
    torch = LazyModule("torch")

# TrainingArguments' words in ``fsdp`` (transformers.trainer_utils.FSDPOption) that FSDP2 has.
FSDP_WORDS = ("full_shard", "shard_grad_op", "offload", "auto_wrap")
FSDP1_ONLY = ("no_shard", "hybrid_shard", "hybrid_shard_zero2")
# fsdp_config keys (TrainingArguments' names) this engine reads; FSDP1's tuning keys are refused.
FSDP_CONFIG_KEYS = (
    "version",
    "reshard_after_forward",
    "cpu_offload",
    "activation_checkpointing",
    "transformer_layer_cls_to_wrap",
    "state_dict_type",
    "auto_wrap_policy",
)


@dataclass(frozen=True)
class ShardingPlan:
    """How ``fully_shard`` is applied: every decoder layer is its own unit, the rest is the root unit."""

    reshard_after_forward: bool = True  # full_shard (ZeRO-3); False = shard_grad_op (ZeRO-2)
    cpu_offload: bool = False
    activation_checkpointing: bool = False
    layer_classes: tuple[str, ...] = ()  # transformer_layer_cls_to_wrap: checked against the model


def _as_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("true", "1", "yes"):
        return True
    if str(value).lower() in ("false", "0", "no"):
        return False
    raise ConfigError(f"fsdp_config {name}: expected true or false, got {value!r}")


def read_fsdp_config(value: Mapping[str, Any] | str | None) -> dict[str, Any]:
    """``fsdp_config`` as TrainingArguments takes it: a mapping, a JSON file path, or (on the command line)
    JSON text; an ``fsdp_`` prefix on a key is dropped, as transformers does."""
    if value is None:
        return {}
    if isinstance(value, str):
        text = Path(value).read_text() if Path(value).is_file() else value
        try:
            value = json.loads(text)
        except ValueError:
            raise ConfigError(f"fsdp_config: {value!r} is neither a JSON file nor JSON text") from None
    if not isinstance(value, Mapping):
        raise ConfigError(f"fsdp_config: expected a mapping of setting: value, got {value!r}")
    config = {key.removeprefix("fsdp_"): item for key, item in value.items()}
    unknown = sorted(set(config) - set(FSDP_CONFIG_KEYS))
    if unknown:
        raise ConfigError(
            f"fsdp_config: unknown or FSDP1-only key(s) {unknown}; known: {', '.join(FSDP_CONFIG_KEYS)}"
        )
    return config


def sharding_plan(
    fsdp: str | bool | None, fsdp_config: Mapping[str, Any] | str | None
) -> ShardingPlan | None:
    """The plan for TrainingArguments' ``fsdp`` words and ``fsdp_config`` (None: no FSDP).

    As transformers translates them for FSDP2: full_shard → reshard_after_forward true, shard_grad_op →
    false, offload → cpu_offload; auto_wrap is what FSDP2 always does here (decoder layers wrapped)."""
    if fsdp in (None, False, "", "false"):
        return None
    config = read_fsdp_config(fsdp_config)
    words = [] if fsdp is True or fsdp == "true" else str(fsdp).split()
    for word in words:
        if word in FSDP1_ONLY:
            raise ConfigError(f"fsdp: '{word}' exists only in FSDP1; FSDP2 takes full_shard or shard_grad_op")
        if word not in FSDP_WORDS:
            raise ConfigError(f"fsdp: unknown option '{word}'; choose from {', '.join(FSDP_WORDS)}")
    if "full_shard" in words and "shard_grad_op" in words:
        raise ConfigError("fsdp: full_shard and shard_grad_op are two strategies; choose one")
    if int(config.get("version", 2)) != 2:
        raise ConfigError("fsdp_config version: rmguard runs FSDP2 only (version 2)")
    if str(config.get("state_dict_type", "FULL_STATE_DICT")).upper() != "FULL_STATE_DICT":
        raise ConfigError(
            "fsdp_config state_dict_type: rmguard gathers a full state dict for every save (FULL_STATE_DICT)"
        )
    if str(config.get("auto_wrap_policy", "TRANSFORMER_BASED_WRAP")).upper() != "TRANSFORMER_BASED_WRAP":
        raise ConfigError("fsdp_config auto_wrap_policy: only TRANSFORMER_BASED_WRAP (the decoder layers)")
    reshard = _as_bool(
        "reshard_after_forward", config.get("reshard_after_forward", "shard_grad_op" not in words)
    )
    layers = config.get("transformer_layer_cls_to_wrap") or ()
    return ShardingPlan(
        reshard_after_forward=reshard,
        cpu_offload=_as_bool("cpu_offload", config.get("cpu_offload", "offload" in words)),
        activation_checkpointing=_as_bool(
            "activation_checkpointing", config.get("activation_checkpointing", False)
        ),
        layer_classes=tuple([layers] if isinstance(layers, str) else layers),
    )


def accelerate_fsdp_settings(environ: Mapping[str, str] = os.environ) -> tuple[str, dict[str, Any]] | None:
    """(fsdp, fsdp_config) from the environment ``accelerate launch`` sets for a config file with
    ``distributed_type: FSDP`` (its ``fsdp_*`` keys become ``FSDP_*`` variables), else None."""
    if environ.get("ACCELERATE_USE_FSDP", "false").lower() != "true":
        return None
    config: dict[str, Any] = {"version": int(environ.get("FSDP_VERSION", "1"))}
    if "FSDP_RESHARD_AFTER_FORWARD" in environ:
        config["reshard_after_forward"] = environ["FSDP_RESHARD_AFTER_FORWARD"]
    for variable, key in (
        ("FSDP_OFFLOAD_PARAMS", "cpu_offload"),
        ("FSDP_ACTIVATION_CHECKPOINTING", "activation_checkpointing"),
        ("FSDP_STATE_DICT_TYPE", "state_dict_type"),
        ("FSDP_AUTO_WRAP_POLICY", "auto_wrap_policy"),
    ):
        if variable in environ:
            config[key] = environ[variable]
    if environ.get("FSDP_TRANSFORMER_CLS_TO_WRAP"):
        config["transformer_layer_cls_to_wrap"] = environ["FSDP_TRANSFORMER_CLS_TO_WRAP"].split(",")
    return "auto_wrap", config


def mixed_precision_policy(mixed_precision: str) -> Any:
    """Accelerate's FSDP2 mixed precision: parameters computed in bf16/fp16, gradients reduced in fp32."""
    from torch.distributed.fsdp import MixedPrecisionPolicy

    if mixed_precision == "no":
        return MixedPrecisionPolicy()
    dtype = torch.bfloat16 if mixed_precision == "bf16" else torch.float16
    return MixedPrecisionPolicy(param_dtype=dtype, reduce_dtype=torch.float32)


def shard_model(model: nn.Module, backbone: nn.Module, plan: ShardingPlan, mixed_precision: str) -> nn.Module:
    """``fully_shard`` each decoder layer of ``backbone``, then ``model`` (the root unit: embeddings, final
    norm, reward head and, for GRM, the LM head); parameters become DTensors sharded over the ranks, in place.
    """
    from torch.distributed.fsdp import CPUOffloadPolicy, OffloadPolicy, fully_shard

    from rmguard.training.last_layer import decoder_layers

    layers = decoder_layers(backbone)
    if layers is None:
        raise ConfigError(f"fsdp: {type(backbone).__name__} has no list of decoder layers to wrap")
    found = {type(layer).__name__ for layer in layers}
    missing = sorted(set(plan.layer_classes) - found)
    if missing:
        raise ConfigError(
            f"fsdp_config transformer_layer_cls_to_wrap: {missing} not in the model (its layers: {sorted(found)})"
        )
    options = {
        "reshard_after_forward": plan.reshard_after_forward,
        "mp_policy": mixed_precision_policy(mixed_precision),
        "offload_policy": CPUOffloadPolicy() if plan.cpu_offload else OffloadPolicy(),
    }
    for layer in layers:
        fully_shard(layer, **options)
    # The root's parameters are gathered for the whole forward anyway; keeping them after it saves a gather.
    fully_shard(model, **{**options, "reshard_after_forward": False})
    return model


def _options(**extra: bool) -> Any:
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    return StateDictOptions(full_state_dict=True, cpu_offload=True, **extra)


def full_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The whole model's state dict, gathered (every rank must call it; rank 0 gets the tensors, on CPU)."""
    from torch.distributed.checkpoint.state_dict import get_model_state_dict

    return get_model_state_dict(model, options=_options())


def load_full_state_dict(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Hand a full state dict (as :func:`full_state_dict` gave it) back to the shards, strictly. A tied
    weight saved once (safetensors keeps one name per storage) is handed to each of its names."""
    from torch.distributed.checkpoint.state_dict import set_model_state_dict

    names: dict[int, list[str]] = {}
    for name, parameter in model.named_parameters(remove_duplicate=False):
        names.setdefault(id(parameter), []).append(name)
    state = dict(state)
    for tied in names.values():
        present = [name for name in tied if name in state]
        for name in tied if present else ():
            state.setdefault(name, state[present[0]])
    set_model_state_dict(model, state, options=_options())


def full_optimizer_state_dict(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """The optimizer's state gathered per parameter name (every rank calls it; rank 0 gets the tensors)."""
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

    return get_optimizer_state_dict(model, optimizer, options=_options())


def load_full_optimizer_state_dict(
    model: nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any]
) -> None:
    from torch.distributed.checkpoint.state_dict import set_optimizer_state_dict

    set_optimizer_state_dict(model, optimizer, state, options=_options())


def local_numel(tensors: Any) -> int:
    """Elements this rank holds of ``tensors`` (a DTensor counts its local shard only)."""
    from torch.distributed.tensor import DTensor

    return sum(t.to_local().numel() if isinstance(t, DTensor) else t.numel() for t in tensors)
