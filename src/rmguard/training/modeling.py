"""Reward models on any Hugging Face causal LM: build, run, save, load.

Two kinds, one forward:
  * standard  a ``*ForSequenceClassification`` (num_labels=1, ``score`` = Linear(H, 1, bias=False)),
              saved so that plain transformers, TRL, RewardBench and vLLM load it with no rmguard code;
  * grm       a ``*ForCausalLM`` whose LM head is kept, plus a reward head on the same final hidden
              state (Yang et al. 2024), laid out as the GRM reference's ``ValueHead``; one forward gives
              rewards and response log-probs.
A standard model trained with ODIN (Chen et al. 2024) also has a length head on the same hidden state,
saved beside the checkpoint in ``length_head.safetensors``: ``score`` is the quality head, so plain
transformers reads the quality reward, as rmguard's scorer does, and the length head only trains.
A standard model trained with InfoRM (Miao et al. 2024) computes its reward through a latent head
(heads.LatentRewardHead) while ``score`` stays frozen; the saved ``score`` is the latent head's exact
scoring-time weight, and the latent head goes beside it in ``latent_head.safetensors``.
The reward is read at the last real token from the final-layer hidden state after the final norm.
The heads are in :mod:`rmguard.training.heads`, the folder layout in :mod:`rmguard.training.saved_layout`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.models.auto.modeling_auto import (
    MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
    MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES,
)
from transformers.utils import logging as hf_logging

from rmguard.errors import ConfigError
from rmguard.fileio import atomic_directory, check_outputs
from rmguard.training.attention import PackedAttention, backbone_attention
from rmguard.training.frozen_prefix import FrozenOutputs, reusing
from rmguard.training.heads import (
    LatentRewardHead,
    init_linear_head,
    latent_head,
    length_head,
    make_reward_head,
)
from rmguard.training.last_layer import decoder_layers, read_rows_only
from rmguard.training.pretrained import resolve_model_path
from rmguard.training.saved_layout import (
    LATENT_HEAD_FILE,
    LENGTH_HEAD_FILE,
    METADATA_FILE,
    REWARD_HEAD_FILE,
    SAVED_BY_LAYOUT,
    is_openrlhf_checkpoint,
    is_reward_checkpoint,
    load_head,
    read_metadata,
    state_part,
    weights_fingerprint,
    write_head,
    write_legacy_layout,
)
from rmguard.training.tokenization import ensure_distinct_pad_token, load_tokenizer


@dataclass
class RewardOutput:
    rewards: Tensor  # [S] one reward per sequence
    hidden: Tensor  # [S, H] final hidden state at each reward token
    logps: Tensor | None = None  # [S] summed response log-probs (GRM), when asked for
    length_rewards: Tensor | None = None  # [S] ODIN's length head (``rewards`` is the quality head)
    head_weights: tuple[Tensor, Tensor] | None = None  # ODIN: (quality, length) head weights, for L_O
    latent: tuple[Tensor, Tensor] | None = None  # InfoRM: μ and log σ² of q(z|h), [S, d] each


def _unwrap(model: nn.Module) -> PreTrainedModel:
    return model.get_base_model() if hasattr(model, "get_base_model") else model


class RewardModel(nn.Module):
    """A transformers model (optionally peft-wrapped) read as a reward model.

    ``hf_model`` is a ``*ForSequenceClassification`` for standard models, or a ``*ForCausalLM`` for GRM
    models, in which case ``reward_head`` holds the reward head.
    """

    def __init__(
        self,
        hf_model: nn.Module,
        reward_head: nn.Module | None = None,
        head_type: str = "linear",
        length_head: nn.Linear | None = None,
        latent_head: LatentRewardHead | None = None,
    ):
        super().__init__()
        self.hf_model = hf_model
        self.reward_head = reward_head
        self.head_type = head_type
        self.length_head = length_head
        self.latent_head = latent_head
        # The pretrained weights this model was fine-tuned from (weights_fingerprint), when known: WARM
        # averages only models that share it.
        self.init_fingerprint: str | None = None
        self.last_layer_rows_only = True  # exact and cheaper (see last_layer.py); False runs every row
        self.frozen_outputs: FrozenOutputs | None = (
            None  # reuse of the frozen part's outputs (frozen_prefix.py)
        )

    @property
    def kind(self) -> str:
        return "standard" if self.reward_head is None else "grm"

    @property
    def transformer(self) -> PreTrainedModel:
        """The unwrapped transformers model (LoRA layers, if any, are injected in place)."""
        return _unwrap(self.hf_model)

    @property
    def backbone(self) -> nn.Module:
        model = self.transformer
        return getattr(model, model.base_model_prefix)

    @property
    def head(self) -> nn.Module:
        return self.transformer.score if self.reward_head is None else self.reward_head

    @property
    def config(self) -> Any:
        return self.transformer.config

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | PackedAttention,
        position_ids: Tensor,
        reward_index: Tensor,
        logp_index: Tensor | None = None,
        logp_target: Tensor | None = None,
        logp_seq: Tensor | None = None,
    ) -> RewardOutput:
        extra = {}
        reuse = None
        if self.frozen_outputs is not None:
            reuse = reusing(self.frozen_outputs, self.backbone, input_ids, position_ids, attention_mask)
        if isinstance(attention_mask, PackedAttention):
            attention_mask, extra = backbone_attention(attention_mask, self.transformer)
        read = reward_index if logp_index is None else torch.cat([reward_index, logp_index])
        shape = tuple(input_ids.shape)
        only_read = read_rows_only(self.backbone, read, shape) if self.last_layer_rows_only else None
        with only_read or contextlib.nullcontext(), reuse or contextlib.nullcontext():
            hidden_states = self.backbone(
                input_ids=input_ids,
                attention_mask=attention_mask,
                position_ids=position_ids,
                use_cache=False,
                **extra,
            ).last_hidden_state
        pooled = hidden_states[reward_index[:, 0], reward_index[:, 1]]
        latent = None
        if self.latent_head is None:
            rewards = self.head(pooled).squeeze(-1).float()
        else:
            rewards, mean, logvar = self.latent_head(pooled)
            rewards, latent = rewards.float(), (mean.float(), logvar.float())
        length_rewards, head_weights = None, None
        if self.length_head is not None:
            length_rewards = self.length_head(pooled).squeeze(-1).float()
            head_weights = (self.head.weight, self.length_head.weight)
        logps = None
        if logp_index is not None:
            if self.reward_head is None:
                raise ConfigError("response log-probs need a GRM model (one that keeps its LM head)")
            # The LM head runs only where a response token is predicted: far cheaper than full logits.
            predicting = hidden_states[logp_index[:, 0], logp_index[:, 1]]
            logits = self.transformer.get_output_embeddings()(predicting).float()
            # log p(target) = −cross-entropy: one fused pass over the vocabulary instead of a full log_softmax
            token_logps = -nn.functional.cross_entropy(logits, logp_target, reduction="none")
            logps = torch.zeros(len(reward_index), dtype=token_logps.dtype, device=token_logps.device)
            logps = logps.index_add(0, logp_seq, token_logps)
        return RewardOutput(rewards, pooled, logps, length_rewards, head_weights, latent)


# ----------------------------------------------------------------------------------------------- build


def _checked_config(path: str, num_hidden_layers: int | None) -> Any:
    if not (Path(path) / "config.json").is_file() and Path(path).exists():
        raise ConfigError(f"{path}: not a Hugging Face model folder (no config.json)")
    try:
        config = AutoConfig.from_pretrained(path)
    except (OSError, ValueError) as error:
        raise ConfigError(f"{path}: cannot load a model config: {error}") from None
    if config.model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        raise ConfigError(f"{path}: model type '{config.model_type}' is not a causal LM")
    if num_hidden_layers is not None:
        if not 1 <= num_hidden_layers <= config.num_hidden_layers:
            raise ConfigError(
                f"num_hidden_layers must be in 1..{config.num_hidden_layers}, got {num_hidden_layers}"
            )
        config.num_hidden_layers = num_hidden_layers
        if getattr(config, "layer_types", None):
            config.layer_types = config.layer_types[:num_hidden_layers]
    return config


def saved_dtype(path: str | Path) -> torch.dtype:
    """The dtype a model folder's config records (float32 when it records none)."""
    found = AutoConfig.from_pretrained(path).get_text_config().dtype
    return getattr(torch, found) if isinstance(found, str) else (found or torch.float32)


def build_reward_model(
    model_name_or_path: str,
    kind: str = "standard",
    head_type: str = "linear",
    num_hidden_layers: int | None = None,
    chat_template: str | None = None,
    dtype: torch.dtype = torch.float32,
) -> tuple[RewardModel, PreTrainedTokenizerBase]:
    """A fresh reward model on a causal LM: a new head, a pad token distinct from EOS/end-of-turn."""
    path = resolve_model_path(model_name_or_path)
    if is_reward_checkpoint(path):
        raise ConfigError(f"{path} is already a reward model; load it with load_reward_model")
    config = _checked_config(path, num_hidden_layers)
    tokenizer = load_tokenizer(path, chat_template)
    added = ensure_distinct_pad_token(tokenizer)
    if kind == "standard":
        if head_type != "linear":
            raise ConfigError("standard reward models have a linear head; an MLP head needs a GRM model")
        if config.model_type not in MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES:
            raise ConfigError(
                f"{path}: transformers has no sequence-classification class for '{config.model_type}'"
            )
        config.num_labels = 1
        with _expected_missing_head():
            hf_model = AutoModelForSequenceClassification.from_pretrained(path, config=config, dtype=dtype)
        init_linear_head(hf_model.score)
        reward_head = None
    else:
        hf_model = AutoModelForCausalLM.from_pretrained(path, config=config, dtype=dtype)
        reward_head = make_reward_head(head_type, config.get_text_config().hidden_size).to(dtype)
    # before the embeddings grow a random pad row: seeds of one base model share this fingerprint
    fingerprint = weights_fingerprint(getattr(hf_model, hf_model.base_model_prefix))
    if added:
        hf_model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    hf_model.config.pad_token_id = tokenizer.pad_token_id
    model = RewardModel(hf_model, reward_head, head_type)
    model.init_fingerprint = fingerprint
    return model, tokenizer


@contextlib.contextmanager
def _expected_missing_head() -> Iterator[None]:
    """Silence transformers' load report while a causal LM becomes a classifier: a missing ``score`` and
    an unused ``lm_head`` are the point there, not a warning."""
    previous = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(previous)


def freeze_bottom_layers(model: RewardModel, count: int) -> None:
    """Stop training the first ``count`` transformer layers (all but the last must stay trainable)."""
    layers = decoder_layers(model.backbone)
    if layers is None:
        raise ConfigError(f"freeze_layers: {type(model.backbone).__name__} has no list of decoder layers")
    if count >= len(layers):
        raise ConfigError(f"freeze_layers must be below the model's {len(layers)} layers, got {count}")
    for layer in layers[:count]:
        layer.requires_grad_(False)


def add_lora(
    model: RewardModel, r: int, alpha: int, dropout: float, target_modules: list[str]
) -> RewardModel:
    """Wrap the transformer in peft LoRA; the head (``score`` or the GRM head) stays fully trainable."""
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=target_modules,
        task_type="SEQ_CLS" if model.kind == "standard" else "CAUSAL_LM",
        modules_to_save=["score"] if model.kind == "standard" else None,
    )
    model.hf_model = get_peft_model(model.hf_model, lora)
    return model


# ----------------------------------------------------------------------------------------------- save / load


def _openrlhf_config(path: Path) -> Any:
    """The config to load an OpenRLHF reward model as a sequence classifier with one label."""
    config = AutoConfig.from_pretrained(path)
    prefix = getattr(config, "value_head_prefix", "score")
    if prefix != "score":
        raise ConfigError(f"{path}: OpenRLHF value head '{prefix}'; rmguard reads the default 'score' only")
    config.num_labels = 1
    return config


def save_reward_model(
    model: RewardModel,
    tokenizer: PreTrainedTokenizerBase,
    output_dir: str | Path,
    metadata: dict[str, Any] | None = None,
    state_dict: dict[str, Tensor] | None = None,
) -> None:
    """Write a checkpoint atomically: nothing in ``output_dir`` is replaced until every file is written.

    ``state_dict`` is the whole RewardModel's, gathered from a sharded model (FSDP, ZeRO-3), whose own
    parameters are only this rank's shards; by default the model's own state dict is saved."""
    meta = {
        "kind": model.kind,
        "head_type": model.head_type,
        "peft": model.hf_model is not model.transformer,
        **(metadata or {}),
        "length_head": model.length_head is not None,
        "latent_head": model.latent_head is not None,
    }
    if model.latent_head is not None:
        meta["latent_dim"] = model.latent_head.latent_dim
    if model.init_fingerprint is not None:
        meta["init_fingerprint"] = model.init_fingerprint
    state = model.state_dict() if state_dict is None else state_dict
    hf_state = state_part(state, "hf_model.")
    if model.latent_head is not None:
        hf_state = _with_scoring_weight(hf_state, state_part(state, "latent_head."), model.latent_head)
    with atomic_directory(output_dir) as tmp:
        model.hf_model.save_pretrained(tmp, safe_serialization=True, state_dict=hf_state)
        tokenizer.save_pretrained(tmp)
        for name, file_name in (
            ("reward_head", REWARD_HEAD_FILE),
            ("length_head", LENGTH_HEAD_FILE),
            ("latent_head", LATENT_HEAD_FILE),
        ):
            if getattr(model, name) is not None:
                write_head(state_part(state, f"{name}."), tmp, file_name)
        write_legacy_layout(tmp)
        (Path(tmp) / METADATA_FILE).write_text(json.dumps(meta, indent=2))


def _with_scoring_weight(
    hf_state: dict[str, Tensor], latent_state: dict[str, Tensor], head: LatentRewardHead
) -> dict[str, Tensor]:
    """``hf_state`` with ``score.weight`` = InfoRM's scoring-time weight w_d W_μ (of the saved tensors, which
    are the gathered ones under sharding), so plain transformers reads the reward rmguard scores."""
    weight = latent_state["decoder.weight"] @ latent_state["encoder.weight"][: head.latent_dim]
    if "score.weight" not in hf_state:
        raise ConfigError("InfoRM's latent head is saved into a plain score head (LoRA is not supported)")
    return {**hf_state, "score.weight": weight.to(hf_state["score.weight"].dtype)}


def load_reward_model(
    path: str | Path, head_type: str | None = None, dtype: torch.dtype = torch.float32
) -> tuple[RewardModel, PreTrainedTokenizerBase]:
    """Load an rmguard or standard sequence-classification checkpoint, strictly.

    A head type that disagrees with the checkpoint, or a head whose weights are missing or mis-shaped,
    is an error: never a silently random head.
    """
    path = Path(path)
    if not path.is_dir():
        raise ConfigError(f"{path}: no such model folder")
    if not is_reward_checkpoint(path):
        raise ConfigError(
            f"{path}: not a reward-model checkpoint (no {METADATA_FILE}, no *ForSequenceClassification)"
        )
    meta = read_metadata(path)
    if head_type is not None and head_type != meta["head_type"]:
        raise ConfigError(f"{path}: checkpoint has a {meta['head_type']} head, not {head_type}")
    tokenizer = AutoTokenizer.from_pretrained(path)
    if meta.get("peft"):
        model = _load_peft(path, meta, tokenizer, dtype)
    elif meta["kind"] == "standard":
        config = _openrlhf_config(path) if is_openrlhf_checkpoint(path) else None
        hf_model = _strict_from_pretrained(AutoModelForSequenceClassification, path, dtype, config)
        model = RewardModel(hf_model)
    else:
        hf_model = _strict_from_pretrained(AutoModelForCausalLM, path, dtype)
        model = RewardModel(
            hf_model, _load_head(path, meta, hf_model.config.get_text_config().hidden_size), meta["head_type"]
        )
    if meta.get("length_head"):
        model.length_head = load_head(path, LENGTH_HEAD_FILE, length_head(model), "length head", "ODIN's")
    if meta.get("latent_head"):
        head = latent_head(model, int(meta.get("latent_dim", 0)))
        model.latent_head = load_head(path, LATENT_HEAD_FILE, head, "latent head", "InfoRM's")
        model.head.requires_grad_(False)
    model.init_fingerprint = meta.get("init_fingerprint")
    model.eval()
    return model, tokenizer


def _strict_from_pretrained(
    auto_class: Any, path: Path | str, dtype: torch.dtype, config: Any = None
) -> PreTrainedModel:
    extra = {} if config is None else {"config": config}
    model, info = auto_class.from_pretrained(path, dtype=dtype, output_loading_info=True, **extra)
    # Tied output embeddings are legitimately absent from the file; anything else missing would be random.
    tied = set(getattr(model, "_tied_weights_keys", None) or {})
    missing = [k for k in info["missing_keys"] if k not in tied]
    if missing or info["mismatched_keys"]:
        raise ConfigError(
            f"{path}: checkpoint does not match its architecture (missing {missing[:5]}, "
            f"mismatched {list(info['mismatched_keys'])[:5]})"
        )
    return model


def _load_head(path: Path, meta: dict[str, Any], hidden_size: int) -> nn.Module:
    head = make_reward_head(meta["head_type"], hidden_size)
    return load_head(path, REWARD_HEAD_FILE, head, "reward head", f"a {meta['head_type']} head")


def _load_peft(
    path: Path, meta: dict[str, Any], tokenizer: PreTrainedTokenizerBase, dtype: torch.dtype
) -> RewardModel:
    from peft import PeftModel

    base = resolve_model_path(meta["base_model_name_or_path"])
    config = _checked_config(base, meta.get("num_hidden_layers"))
    if meta["kind"] == "standard":
        config.num_labels = 1
        with _expected_missing_head():
            hf_model = AutoModelForSequenceClassification.from_pretrained(base, config=config, dtype=dtype)
    else:
        hf_model = AutoModelForCausalLM.from_pretrained(base, config=config, dtype=dtype)
    if hf_model.get_input_embeddings().num_embeddings != len(tokenizer):
        hf_model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    hf_model.config.pad_token_id = tokenizer.pad_token_id
    peft_model = PeftModel.from_pretrained(hf_model, str(path))
    head = None
    if meta["kind"] == "grm":
        head = _load_head(path, meta, config.get_text_config().hidden_size)
    return RewardModel(peft_model, head, meta["head_type"])


def merge_lora(adapter_dir: str | Path, output_dir: str | Path) -> None:
    """Merge a LoRA reward model into a standalone checkpoint (standard models load with plain transformers)."""
    check_outputs([output_dir], [adapter_dir], folders=True)
    model, tokenizer = load_reward_model(adapter_dir)
    if not read_metadata(adapter_dir).get("peft"):
        raise ConfigError(f"{adapter_dir}: not a LoRA checkpoint")
    merged = model.hf_model.merge_and_unload()
    meta = {k: v for k, v in read_metadata(adapter_dir).items() if k not in SAVED_BY_LAYOUT}
    merged_model = RewardModel(
        merged, model.reward_head, model.head_type, model.length_head, model.latent_head
    )
    merged_model.init_fingerprint = model.init_fingerprint
    save_reward_model(merged_model, tokenizer, output_dir, meta)


def export_standard(grm_dir: str | Path, output_dir: str | Path) -> float:
    """Turn a linear-head GRM checkpoint into a standard ``*ForSequenceClassification`` checkpoint.

    The standard ``score`` is Linear(H, 1) without bias, so the GRM head's bias b is dropped: every
    exported reward is the GRM reward − b. Orders, differences, accuracies, τ and Best-of-N picks are
    unchanged. Returns b, also recorded as ``dropped_head_bias`` in rmguard.json.
    """
    model, tokenizer = load_reward_model(grm_dir)
    if model.kind != "grm" or model.head_type != "linear":
        raise ConfigError(
            f"{grm_dir}: only a GRM checkpoint with a linear head exports to sequence classification"
        )
    causal = model.transformer
    config = causal.config
    config.num_labels = 1
    config.architectures = None
    seq_cls = AutoModelForSequenceClassification.from_config(config, dtype=causal.dtype)
    prefix = seq_cls.base_model_prefix
    getattr(seq_cls, prefix).load_state_dict(
        getattr(causal, causal.base_model_prefix).state_dict(), strict=True
    )
    seq_cls.score.weight.data.copy_(model.reward_head.weight.data)
    seq_cls.config.pad_token_id = tokenizer.pad_token_id
    bias = float(model.reward_head.bias.detach().float().item())
    meta = {k: v for k, v in read_metadata(grm_dir).items() if k not in SAVED_BY_LAYOUT}
    exported = RewardModel(seq_cls)
    exported.init_fingerprint = model.init_fingerprint
    save_reward_model(exported, tokenizer, output_dir, {**meta, "dropped_head_bias": bias})
    return bias
