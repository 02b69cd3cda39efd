"""argparse ``type=`` functions for numeric options, built on :mod:`rmguard.checks` (one rule, two doors),
and the help formatter every sub-command uses."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from rmguard import checks
from rmguard.errors import ConfigError


def _typed(convert: Callable[[str], float], check: Callable[[str, float], None]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = convert(text)
            check("the value", value)
        except (ValueError, ConfigError) as error:
            raise argparse.ArgumentTypeError(str(error).replace("the value ", "") or repr(text)) from error
        return value

    parse.__name__ = convert.__name__  # argparse names the type in its message
    return parse


count = _typed(int, checks.at_least)  # ≥ 1: batch sizes, samples, steps
non_negative_int = _typed(int, lambda name, value: checks.at_least(name, value, 0))
positive_float = _typed(float, checks.positive)
finite_float = _typed(float, checks.finite)
fraction = _typed(float, checks.fraction)
top_p = _typed(float, lambda name, value: checks.fraction(name, value, exclude_zero=True))


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Every option's help ends with its default, or says that it is required (a help text that already
    names its default keeps its own wording)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default is argparse.SUPPRESS or "(default" in text or not action.option_strings:
            return text
        if action.required:
            return f"{text} (required)"
        if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
            return f"{text} (default: off)"  # a flag: its dest's default would read backwards for store_false
        return f"{text} (default: %(default)s)"
