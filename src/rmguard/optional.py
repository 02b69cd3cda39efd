"""Missing packages: a feature whose package is not installed is one line saying what to install."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from rmguard.errors import ConfigError

# Import name → the rmguard extra that installs it.
EXTRAS = {"wandb": "wandb", "httpx": "dev", "pytest": "dev"}
# Import names of rmguard's own dependencies: missing means a broken install, fixed by reinstalling.
BASE = {
    "torch", "transformers", "accelerate", "peft", "datasets", "safetensors", "gguf", "yaml", "regex",
    "numpy", "scipy", "matplotlib", "rich", "tqdm", "tensorboard", "trl", "starlette", "uvicorn",
}  # fmt: skip


def install_hint(module: str) -> str:
    """What to run so that ``module`` (an import name, possibly dotted) can be imported."""
    top = module.split(".")[0]
    if top in EXTRAS:
        return f"pip install 'rmguard[{EXTRAS[top]}]'"
    if top in BASE:
        return "it is a dependency of rmguard; reinstall it: pip install -c constraints.txt -e ."
    return f"pip install {top}"


def missing_package_message(module: str, feature: str | None = None) -> str:
    top = module.split(".")[0]
    what = (
        f"{feature} needs the '{top}' package, which is not installed"
        if feature
        else f"the '{top}' package is not installed"
    )
    return f"{what}: {install_hint(top)}"


def require(module: str, feature: str) -> ModuleType:
    """``module`` imported, or a ConfigError of one line naming what to install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(missing_package_message(module, feature)) from None


class LazyModule:
    """A module imported at its first attribute use: ``torch = LazyModule("torch")`` lets a module that
    declares config dataclasses be imported by the command line, whose ``--help`` and refusals answer before
    any heavy import (a module-level ``@torch.no_grad()`` would import it at once: use ``with`` inside)."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        return getattr(importlib.import_module(self._name), attribute)
