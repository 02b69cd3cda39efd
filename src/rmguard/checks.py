"""Range checks for numeric settings, one home for every config dataclass and command-line option.

Each raises :class:`~rmguard.errors.ConfigError` naming the setting, so a negative batch size or a NaN
learning rate stops a run with one line instead of producing numbers from uninitialised memory.
"""

from __future__ import annotations

import math

from rmguard.errors import ConfigError


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    return float(value)


def at_least(name: str, value: object, low: float = 1) -> None:
    """``value ≥ low`` (batch sizes, counts, steps: low = 1)."""
    if _number(name, value) < low:
        raise ConfigError(f"{name} must be at least {low:g}, got {value}")


def positive(name: str, value: object) -> None:
    """A finite ``value > 0`` (learning rates, temperatures)."""
    if not 0 < _number(name, value) < math.inf:
        raise ConfigError(f"{name} must be finite and greater than 0, got {value}")


def finite(name: str, value: object) -> None:
    if not math.isfinite(_number(name, value)):
        raise ConfigError(f"{name} must be finite, got {value}")


def fraction(name: str, value: object, exclude_zero: bool = False) -> None:
    """``value`` in [0, 1], or in (0, 1] with ``exclude_zero`` (top_p)."""
    number = _number(name, value)
    if not (0 < number <= 1 if exclude_zero else 0 <= number <= 1):
        raise ConfigError(f"{name} must lie in {'(0, 1]' if exclude_zero else '[0, 1]'}, got {value}")
