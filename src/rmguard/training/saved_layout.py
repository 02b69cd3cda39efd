"""The saved-model format: what an rmguard checkpoint folder holds besides transformers' own files.

A checkpoint is a transformers model folder (``save_pretrained``: config, weights, tokenizer), readable by
transformers 5.x and 4.x (:func:`write_legacy_layout`), plus:
  * ``rmguard.json``               the metadata: kind (standard | grm), head_type, peft, the extra heads,
                                   the training run's facts (:func:`read_metadata`)
  * ``reward_head.safetensors``    a GRM model's reward head (the folder holds a ``*ForCausalLM``)
  * ``length_head.safetensors``    ODIN's length head (read by training only: ``score`` is the quality head)
  * ``latent_head.safetensors``    InfoRM's encoder and decoder (training and the latent diagnostic;
                                   ``score`` holds their exact scoring-time product)
docs/checkpoints.md describes the layout for users. :mod:`rmguard.training.modeling` writes and reads it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from rmguard.errors import ConfigError
from rmguard.fileio import read_json

METADATA_FILE = "rmguard.json"
REWARD_HEAD_FILE = "reward_head.safetensors"
LENGTH_HEAD_FILE = "length_head.safetensors"  # ODIN's length head, read by training only
LATENT_HEAD_FILE = "latent_head.safetensors"  # InfoRM's encoder and decoder
# The extra head of each kind: rmguard.json's key (true when present) and its file.
EXTRA_HEAD_FILES = {"length_head": LENGTH_HEAD_FILE, "latent_head": LATENT_HEAD_FILE}


def is_openrlhf_checkpoint(path: str | Path) -> bool:
    """A reward model saved by OpenRLHF: its ``RewardModel`` class (openrlhf/models/model.py) is the
    backbone under its base-model prefix plus ``score`` = Linear(H, 1, bias=False), the layout of a
    ``*ForSequenceClassification``, and its config always holds ``normalize_reward``."""
    config_file = Path(path) / "config.json"
    if (Path(path) / METADATA_FILE).is_file() or not config_file.is_file():
        return False
    config = read_json(config_file)
    return (
        isinstance(config, dict)
        and config.get("architectures") == ["RewardModel"]
        and "normalize_reward" in config
    )


def is_reward_checkpoint(path: str | Path) -> bool:
    path = Path(path)
    if (path / METADATA_FILE).is_file() or is_openrlhf_checkpoint(path):
        return True
    config_file = path / "config.json"
    if config_file.is_file():
        config = read_json(config_file)
        architectures = (config.get("architectures") if isinstance(config, dict) else None) or []
        return any(a.endswith("ForSequenceClassification") for a in architectures)
    return False


# Metadata keys save_reward_model writes from the model itself (a re-save must not carry stale ones over).
SAVED_BY_LAYOUT = ("kind", "head_type", "peft", *EXTRA_HEAD_FILES, "latent_dim", "init_fingerprint")


def read_metadata(path: str | Path) -> dict[str, Any]:
    meta_file = Path(path) / METADATA_FILE
    if meta_file.is_file():
        meta = read_json(meta_file)
        if not isinstance(meta, dict):
            raise ConfigError(f"{meta_file}: expected a JSON object")
        return meta
    return {"kind": "standard", "head_type": "linear", "peft": False}


def weights_fingerprint(module: nn.Module, samples: int = 1024) -> str:
    """A short digest of a module's weights: every tensor's name, shape, dtype and ``samples`` values
    spread over it. Cheap on any model size, and different for two pretrained models or two fine-tunes."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        flat = tensor.detach().reshape(-1)
        picked = flat[:: max(1, flat.numel() // samples)][:samples].to("cpu", torch.float64)
        digest.update(f"{name}|{tuple(tensor.shape)}|{tensor.dtype}|".encode())
        digest.update(picked.numpy().tobytes())
    return digest.hexdigest()[:32]


def state_part(state: dict[str, Tensor], prefix: str) -> dict[str, Tensor]:
    """The entries of a submodule's state dict, named as the submodule names them."""
    return {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}


def write_head(state: dict[str, Tensor], folder: str | Path, file_name: str) -> None:
    save_file({k: v.contiguous() for k, v in state.items()}, str(Path(folder) / file_name))


def load_head(path: Path, file_name: str, head: nn.Module, what: str, expected_head: str) -> nn.Module:
    """``head`` with the weights of ``path/file_name``, strictly: a missing file, a missing or extra key or a
    wrong shape is one line naming the file, never a silently random head."""
    head_file = path / file_name
    if not head_file.is_file():
        raise ConfigError(f"{path}: checkpoint without {file_name} (its {what})")
    state = load_file(str(head_file))
    expected = head.state_dict()
    missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
    shapes = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or shapes:
        legacy = " (a bias-free linear head from an older rmguard: retrain it)" if missing == ["bias"] else ""
        raise ConfigError(
            f"{path}: {what} does not match {expected_head}{legacy} ({file_name}): missing {missing}, "
            f"unexpected {unexpected}, wrong shape {shapes}"
        )
    head.load_state_dict(state, strict=True)
    return head


# transformers 4.x knows none of these 5.x tokenizer classes; PreTrainedTokenizerFast reads the same
# tokenizer.json in both.
LEGACY_TOKENIZER_CLASS = {"TokenizersBackend": "PreTrainedTokenizerFast"}


def write_legacy_layout(folder: str | Path) -> None:
    """Make a saved checkpoint read the same in transformers 4.x (RewardBench 0.1.4 pins 4.51; vLLM's CPU
    build pins < 5.20) as in 5.x, or refuse to write it.

    4.x reads RoPE from top-level ``rope_theta`` / ``rope_scaling`` (5.x keeps them in ``rope_parameters``;
    without the top-level copy 4.x silently falls back to θ = 10000), knows no ``TokenizersBackend``
    tokenizer class (the stand-in must not add ``token_type_ids``), and reads extra special tokens from ``additional_special_tokens`` (a list under
    ``extra_special_tokens`` makes it fail).
    """
    config_file = Path(folder) / "config.json"
    if config_file.is_file():  # a LoRA adapter folder has adapter_config.json instead
        config = json.loads(config_file.read_text())
        for section in (config, config.get("text_config")):
            if isinstance(section, dict) and "rope_parameters" in section:
                _legacy_rope(section)
        config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    tokenizer_file = Path(folder) / "tokenizer_config.json"
    if tokenizer_file.is_file():
        tokenizer = json.loads(tokenizer_file.read_text())
        name = tokenizer.get("tokenizer_class")
        if name in LEGACY_TOKENIZER_CLASS:
            tokenizer["tokenizer_class"] = LEGACY_TOKENIZER_CLASS[name]
            # PreTrainedTokenizerFast would add token_type_ids, which decoder models refuse as an input.
            tokenizer.setdefault("model_input_names", ["input_ids", "attention_mask"])
        if isinstance(tokenizer.get("extra_special_tokens"), list):
            tokenizer["additional_special_tokens"] = tokenizer.pop("extra_special_tokens")
        tokenizer_file.write_text(json.dumps(tokenizer, indent=2) + "\n")


def _legacy_rope(section: dict[str, Any]) -> None:
    rope = section["rope_parameters"]
    if not isinstance(rope, dict) or not isinstance(rope.get("rope_theta"), (int, float)):
        raise ConfigError(
            f"cannot save a checkpoint that transformers 4.x reads correctly: rope_parameters {rope!r} "
            "has no single rope_theta (per-layer-type RoPE)"
        )
    section["rope_theta"] = rope["rope_theta"]
    if "partial_rotary_factor" in rope:
        section["partial_rotary_factor"] = rope["partial_rotary_factor"]
    scaling = {k: v for k, v in rope.items() if k not in ("rope_theta", "partial_rotary_factor")}
    if scaling.get("rope_type", "default") != "default":
        section["rope_scaling"] = scaling
