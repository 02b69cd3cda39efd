"""TRL's setting names folded into rmguard's: what a ``trl reward`` user types (TRL's ``RewardConfig``,
``ModelConfig`` and ``ScriptArguments``) where rmguard has its own name for the same setting."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rmguard.errors import ConfigError

# TRL's name → rmguard's, for settings that are the same thing under two names.
TRL_RENAMES = {
    "dataset_name": "train_file",
    "dataset_train_split": "train_split",
    "dataset_test_split": "eval_split",
    "torch_dtype": "dtype",
}


def resolve_trl_names(values: dict[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` with TRL's names folded into rmguard's fields (the TRL name then unset).

    center_rewards_coefficient c → objective 'center', center_coef c; label_smoothing_factor ε > 0 →
    objective 'label_smoothing', label_smoothing ε; bf16 / fp16 → mixed_precision; chat_template_path →
    chat_template (a tokenizer folder gives its template). A TRL name that disagrees with a value given
    for rmguard's own name is an error, never a silent choice; ``defaults`` are the fields' defaults (a field
    still at its default is not a value given).
    """
    values = dict(values)

    def put(name: str, value: Any, given_as: str) -> None:
        current = values.get(name, defaults.get(name))
        if current not in (defaults.get(name), value):
            raise ConfigError(f"{given_as} disagrees with {name}={current!r}; set one of them")
        values[name] = value

    for trl_name, name in TRL_RENAMES.items():
        if values.get(trl_name) is not None:
            put(name, values[trl_name], f"{trl_name}={values[trl_name]!r}")
        values[trl_name] = None
    if values.get("chat_template_path") is not None:
        path = values["chat_template_path"]
        put("chat_template", chat_template_from_path(path), f"chat_template_path={path!r}")
    coefficient = values.get("center_rewards_coefficient")
    if coefficient is not None:
        put("objective", "center", f"center_rewards_coefficient={coefficient!r}")
        put("center_coef", coefficient, f"center_rewards_coefficient={coefficient!r}")
    smoothing = values.get("label_smoothing_factor")
    if smoothing:
        put("objective", "label_smoothing", f"label_smoothing_factor={smoothing!r}")
        put("label_smoothing", smoothing, f"label_smoothing_factor={smoothing!r}")
    if values.get("bf16") and values.get("fp16"):
        raise ConfigError("bf16 and fp16 are both true; choose one")
    for precision in ("bf16", "fp16"):
        if values.get(precision):
            put("mixed_precision", precision, f"{precision}=true")
    for trl_name in (
        "chat_template_path",
        "center_rewards_coefficient",
        "label_smoothing_factor",
        "bf16",
        "fp16",
    ):
        values[trl_name] = None
    return values


def chat_template_from_path(path: str) -> str:
    """A chat template from a Jinja file, or from a tokenizer folder (chat_template.jinja or the
    ``chat_template`` of tokenizer_config.json), as TRL's chat_template_path takes either."""
    folder = Path(path)
    if folder.is_file():
        return folder.read_text()
    if folder.is_dir():
        if (folder / "chat_template.jinja").is_file():
            return (folder / "chat_template.jinja").read_text()
        config_file = folder / "tokenizer_config.json"
        if config_file.is_file():
            try:
                template = json.loads(config_file.read_text()).get("chat_template")
            except (ValueError, AttributeError):
                template = None
            if isinstance(template, str):
                return template
    raise ConfigError(
        f"chat_template_path {path}: neither a template file nor a tokenizer folder with a chat template"
    )
