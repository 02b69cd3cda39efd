"""rmguard train --config FILE.yaml [--any_field value ...]"""

from __future__ import annotations

import argparse
import dataclasses
from typing import NoReturn

from transformers import HfArgumentParser

from rmguard.errors import ConfigError
from rmguard.training.config import TrainConfig, load_config


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a reward model",
        description="Train a reward model. Every config field below can be set in the YAML file and "
        "overridden as --field value; TRL's names (RewardConfig, ModelConfig, ScriptArguments) are accepted.",
        add_help=False,
    )
    parser.add_argument(
        "-h", "--help", action=FieldsHelp, help="show this help, every config field included, and exit"
    )
    parser.add_argument("--config", default=None, help="YAML file of config fields")
    parser.add_argument("--help-fields", action="store_true", help="list only the config fields and exit")
    parser.set_defaults(func=run, accepts_overrides=True)


class FieldsHelp(argparse.Action):
    """``--help`` shows the sub-command's own options and then every config field with its help and
    default, as ``trl reward --help`` does."""

    def __init__(self, option_strings: list[str], dest: str, help: str | None = None):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(self, parser, namespace, values, option_string=None) -> NoReturn:
        fields = field_parser().format_help().split("\noptions:\n", 1)[1]  # its options, not its usage
        print(parser.format_help() + "\nconfig fields (YAML keys, or --field value):\n" + fields, end="")
        parser.exit(0)


class FieldParser(HfArgumentParser):
    """A bad field value is one line (a ConfigError), not argparse's full usage of every field."""

    def error(self, message: str) -> NoReturn:
        raise ConfigError(message)


def field_parser() -> HfArgumentParser:
    return FieldParser(TrainConfig, prog="rmguard train", add_help=False)


def parse(args: argparse.Namespace) -> TrainConfig:
    base = load_config(args.config, validate=False) if args.config else TrainConfig()
    parser = field_parser()
    parser.set_defaults(**dataclasses.asdict(base))
    overridden, unknown = parser.parse_args_into_dataclasses(args.overrides, return_remaining_strings=True)
    if unknown:
        raise ConfigError(f"unknown config field(s) on the command line: {' '.join(unknown)}")
    return load_config(None, dataclasses.asdict(overridden))


def run(args: argparse.Namespace) -> int:
    if args.help_fields:
        field_parser().print_help()
        return 0
    from rmguard.training.trainer import train

    result = train(parse(args))
    print(f"model: {result.output_dir} ({result.global_step} steps)")
    return 0
