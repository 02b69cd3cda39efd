"""Gold rewards: the reference a proxy RM is judged against.

A gold SPEC is either a reward-model checkpoint (a folder or a hub name: any ``*ForSequenceClassification``
RM, or an rmguard one) or ``module:function`` / ``path/to/file.py:function`` naming a Python function
``f(prompt, response) -> float``, for synthetic worlds whose gold reward is a program.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
from collections.abc import Callable, Sequence
from pathlib import Path

from rmguard.data.records import Text
from rmguard.errors import ConfigError


class GoldScorer:
    """Scores (prompt, response) pairs with a gold SPEC; ``score`` returns one float per pair."""

    def __init__(self, spec: str, batch_size: int = 16):
        self.spec = spec
        self._function: Callable[[Text, Text], float] | None = None
        self._scorer = None
        if Path(spec).is_dir() or ":" not in spec:
            from rmguard.scoring import RewardScorer
            from rmguard.training.pretrained import local_model_folder

            self._scorer = RewardScorer(local_model_folder(spec), batch_size=batch_size)
        else:
            self._function = load_function(spec)

    def score(self, prompts: Sequence[Text], responses: Sequence[Text]) -> list[float]:
        if self._scorer is not None:
            return self._scorer.score(prompts, responses)
        return [self._call(index, p, r) for index, (p, r) in enumerate(zip(prompts, responses), 1)]

    def _call(self, index: int, prompt: Text, response: Text) -> float:
        """One gold score; a gold function that raises or returns no finite number stops with one line."""
        try:
            value = self._function(prompt, response)
        except Exception as error:
            raise ConfigError(
                f"gold function {self.spec} raised {type(error).__name__}: {error} on item {index}"
            ) from None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(
                f"gold function {self.spec} returned {value!r} for item {index}, not a finite number"
            )
        return float(value)


def load_function(spec: str) -> Callable[[Text, Text], float]:
    """Import ``module:function`` or ``file.py:function``."""
    module_name, sep, attribute = spec.rpartition(":")
    if not sep or not module_name or not attribute:
        raise ConfigError(f"gold spec '{spec}' is neither a model folder nor module:function")
    try:
        if module_name.endswith(".py"):
            path = Path(module_name)
            if not path.is_file():
                raise ConfigError(f"gold spec '{spec}': no such file {path}")
            module_spec = importlib.util.spec_from_file_location(path.stem, path)
            module = importlib.util.module_from_spec(module_spec)
            module_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(module_name)
    except ImportError as error:
        raise ConfigError(f"gold spec '{spec}': cannot import {module_name}: {error}") from None
    except Exception as error:  # the user's module failed while loading (a syntax error, a raise)
        raise ConfigError(
            f"gold spec '{spec}': loading {module_name} raised {type(error).__name__}: {error}"
        ) from None
    function = getattr(module, attribute, None)
    if not callable(function):
        raise ConfigError(f"gold spec '{spec}': {module_name} has no function {attribute}")
    return function
