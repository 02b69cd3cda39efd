"""argparse ``type=`` functions for numeric options, built on :mod:`rmguard.checks` (one rule, two doors),
the help formatter every sub-command uses, and options made from config dataclasses (one declaration per
setting)."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from typing import Any

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


# ----------------------------------------------------------------------------------------------- config dataclasses
# The one path from config dataclasses to options, for every sub-command: each field is a --name option
# (HfArgumentParser: type, default and help from the field), parsed with the sub-command's other options;
# build_configs makes the dataclasses and reports a setting its checks refuse under its option name.


def config_options(
    *config_types: type, extra: Callable[[argparse.ArgumentParser], None] | None = None
) -> argparse.ArgumentParser:
    """A parent parser (``add_parser(parents=[...])``) with one option per field of the config dataclasses,
    made by transformers' HfArgumentParser: type, default and help come from the field, so each setting
    is declared once. ``--field_name`` and ``--field-name`` both work; a field's ``aliases`` metadata adds
    more spellings. ``extra(parser)`` adds options that are settings but not fields (registered
    hyperparameters)."""
    from transformers import HfArgumentParser

    parser = HfArgumentParser(config_types, add_help=False)
    if extra is not None:
        extra(parser)
    return parser


def add_config_command(
    subparsers: argparse._SubParsersAction,
    name: str,
    config_types: tuple[type, ...],
    run: Callable[[argparse.Namespace], int],
    progress: bool = True,
    **parser_kwargs: Any,
) -> argparse.ArgumentParser:
    """A sub-command whose options are the fields of ``config_types`` (:func:`config_options`), each
    default shown in ``--help``, plus ``--no-progress`` when ``progress``; ``run`` builds the configs with
    :func:`build_configs`."""
    parser = subparsers.add_parser(
        name,
        parents=[config_options(*config_types)] if config_types else [],
        formatter_class=DefaultsHelpFormatter,
        **parser_kwargs,
    )
    if progress:
        parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)
    return parser


def given_options(parser: argparse.ArgumentParser) -> None:
    """Leave an option out of the parsed namespace unless the command line gives it (a YAML file's value
    then stands for the rest: see :func:`given_settings`)."""
    for action in parser._actions:
        if action.option_strings and action.default is not argparse.SUPPRESS:
            action.default = argparse.SUPPRESS


def given_settings(args: argparse.Namespace, names: list[str]) -> dict[str, Any]:
    """The settings among ``names`` the command line gave (after :func:`given_options`)."""
    return {name: _flatten(getattr(args, name)) for name in names if hasattr(args, name)}


def build_configs(args: argparse.Namespace, *config_types: type) -> list[Any]:
    """The config dataclasses from parsed options; their own checks (``__post_init__``, then ``validate()``
    where a config has one) run here, and an out-of-range setting is reported under its option name
    (``--top-p must lie in (0, 1], got 0``)."""
    configs = []
    for config_type in config_types:
        names = [f.name for f in dataclasses.fields(config_type) if f.init]
        try:
            config = config_type(**{name: _flatten(getattr(args, name)) for name in names})
            if hasattr(config, "validate"):
                config.validate()
        except ConfigError as error:
            raise option_error(error, names) from None
        configs.append(config)
    return configs


def option_error(error: ConfigError, names: list[str]) -> ConfigError:
    """``error`` about setting NAME as one about option ``--NAME`` (hyphenated); other errors unchanged."""
    name, space, rest = str(error).partition(" ")
    return ConfigError(f"--{name.replace('_', '-')}{space}{rest}") if name in names else error


def _flatten(value: Any) -> Any:
    """A repeatable list option (``action="append"`` over ``nargs="+"``) gives a list of lists: one list."""
    if isinstance(value, list) and value and all(isinstance(v, list) for v in value):
        return [item for part in value for item in part]
    return value


def add_model_option(parser: argparse.ArgumentParser, several: bool = False) -> None:
    """The required ``--model`` of the commands that run a reward model; ``several``: repeat it for each."""
    if several:
        parser.add_argument(
            "--model", action="append", required=True, help="reward-model folder (repeat for several)"
        )
    else:
        parser.add_argument("--model", required=True, help="reward-model checkpoint folder")


NORMALIZE_HELP = (
    "report (r - mean) / std with the reward mean and std the checkpoint's config.json holds (OpenRLHF's "
    "'mean' and 'std', written when the model was evaluated)"
)


def add_normalize_option(parser: argparse.ArgumentParser) -> None:
    """``--normalize`` of ``score`` and ``serve`` (``bon`` and ``rloo`` declare it in their configs)."""
    parser.add_argument("--normalize", action="store_true", help=NORMALIZE_HELP)


def add_scoring_options(parser: argparse.ArgumentParser) -> None:
    """``--batch-size`` and ``--max-length`` of the commands that score with a reward model."""
    parser.add_argument("--batch-size", type=count, default=16, help="responses per forward pass")
    parser.add_argument(
        "--max-length",
        type=count,
        default=None,
        help="cut prompts from the left beyond this many tokens; a response longer than that is an error "
        "naming its row (default: the model's max_position_embeddings)",
    )
