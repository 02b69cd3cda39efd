"""Optional dependencies: a feature whose package is missing is one line naming the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from rmguard.errors import ConfigError


def require(module: str, extra: str, feature: str) -> ModuleType:
    """``module`` imported, or a ConfigError: "<feature> needs the '<module>' package: pip install 'rmguard[<extra>]'"."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(
            f"{feature} needs the '{module}' package, which is not installed: pip install 'rmguard[{extra}]'"
        ) from None
