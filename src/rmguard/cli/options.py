"""argparse ``type=`` functions for numeric options, built on :mod:`rmguard.checks` (one rule, two doors),
the help formatter every sub-command uses, and options made from config dataclasses (one declaration per
setting)."""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import types
import typing
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from rmguard import checks, run_folder, settings
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
    the way transformers' HfArgumentParser makes them (type, default and help from the field, so each
    setting is declared once), without importing transformers (``--help`` answers before any heavy import).
    ``--field_name`` and ``--field-name`` both work; a field's ``aliases`` metadata adds more spellings.
    ``extra(parser)`` adds options that are settings but not fields (registered hyperparameters)."""
    parser = argparse.ArgumentParser(add_help=False, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    for config_type in config_types:
        hints = settings.field_types(config_type)
        for field in dataclasses.fields(config_type):
            if field.init:
                _add_field_option(parser, field, hints[field.name])
    if extra is not None:
        extra(parser)
    return parser


def _add_field_option(parser: argparse.ArgumentParser, field: dataclasses.Field, annotation: Any) -> None:
    """HfArgumentParser's rules: ``X | None`` is X; a Literal gives choices; a bool takes an optional
    yes/no value (``--no_NAME`` too when it defaults to true); a list takes one or more values."""
    spellings = [f"--{field.name}", *([f"--{field.name.replace('_', '-')}"] if "_" in field.name else [])]
    kwargs = dict(field.metadata)
    aliases = kwargs.pop("aliases", [])
    if typing.get_origin(annotation) in (
        typing.Union,
        types.UnionType,
    ):  # one type per option, as HF picks it
        first, second = typing.get_args(annotation)[:2]
        if type(None) not in typing.get_args(annotation):
            annotation = first if second is str else second
        elif bool not in typing.get_args(annotation):
            annotation = first if second is type(None) else second
    origin = typing.get_origin(annotation) or annotation
    default = field.default_factory() if field.default_factory is not dataclasses.MISSING else field.default
    if default is not dataclasses.MISSING:
        kwargs["default"] = default
    elif annotation is bool:
        kwargs["default"] = False
    else:
        kwargs["required"] = True
    if origin is typing.Literal:
        kwargs["choices"] = list(typing.get_args(annotation))
        kwargs["type"] = _choice_type(kwargs["choices"])
    elif annotation is bool or annotation == bool | None:
        kwargs["type"] = settings.to_bool
        if kwargs.get("default") is not None:
            kwargs.update(nargs="?", const=True)
    elif isinstance(origin, type) and issubclass(origin, list):
        kwargs.update(type=typing.get_args(annotation)[0], nargs="+")
    else:
        kwargs["type"] = annotation
    parser.add_argument(*spellings, *aliases, **kwargs)
    if default is True:
        kwargs = {**field.metadata, "default": False}
        kwargs.pop("aliases", None)
        spellings = [f"--no_{field.name}", f"--no-{field.name.replace('_', '-')}"]
        parser.add_argument(*spellings, action="store_false", dest=field.name, **kwargs)


def _choice_type(choices: list[Any]) -> Callable[[str], Any]:
    """A Literal's values from their text (``1`` is the int of ``Literal[1, 2]``)."""
    by_text = {str(choice): choice for choice in choices}
    return lambda text: by_text.get(text, text)


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


# ----------------------------------------------------------------------------------------------- the run's output
# One run per output (rmguard.run_folder), checked at each writing command's entry; what the command
# claimed is kept on its namespace so that Ctrl-C can say what exists and the command that goes on.


def claim_output(
    args: argparse.Namespace,
    output: str | Path,
    settings: Any,
    inputs: Iterable[str | Path | None] = (),
    companions: Iterable[str | Path] = (),
    checkpoints: Callable[[Path], list[Path]] | None = None,
) -> None:
    """Apply the output rule with ``settings``' ``overwrite_output_dir`` (and ``resume_from_checkpoint``,
    whose presence says the command can continue a run); ``checkpoints(output)``: the run's checkpoints,
    for a command that resumes from one."""
    resumable = hasattr(settings, "resume_from_checkpoint")
    run_folder.claim_output(
        output,
        getattr(settings, "resume_from_checkpoint", None),
        settings.overwrite_output_dir,
        [path for path in inputs if path],
        resumable=resumable,
        companions=companions,
    )
    args.claimed = (Path(output), resumable, checkpoints)


def interrupted_note(args: argparse.Namespace, argv: list[str]) -> str:
    """After Ctrl-C: what the run left (the last checkpoint, or its finished work) and the exact command
    that continues it, or the one that starts over."""
    if not hasattr(args, "claimed"):
        return ""
    output, resumable, checkpoints = args.claimed
    given = _without_run_options(argv)
    if resumable and checkpoints is not None:
        found = checkpoints(output)
        if found:
            return f"; last checkpoint {found[-1]}\nresume: rmguard {shlex.join(given)} {run_folder.RESUME}"
        return f"; no checkpoint yet (save_steps)\nstart over: rmguard {shlex.join(given)} {run_folder.OVERWRITE}"
    if not run_folder.holds_run(output):
        return ""
    if resumable:
        return f"; its finished work is kept in {output}\nresume: rmguard {shlex.join(given)} {run_folder.RESUME}"
    return f"\nstart over: rmguard {shlex.join(given)} {run_folder.OVERWRITE}"


def _without_run_options(argv: list[str]) -> list[str]:
    """``argv`` without the output rule's options (and their values), which the note adds back."""
    kept, skip = [], False
    for word in argv:
        name = word.split("=", 1)[0].replace("-", "_")
        if skip and not word.startswith("-"):
            skip = False
            continue
        skip = False
        if name in ("__resume_from_checkpoint", "__overwrite_output_dir"):
            skip = "=" not in word
            continue
        kept.append(word)
    return kept
