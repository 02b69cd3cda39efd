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
        description="Train a reward model. Every TrainConfig field can be set in the YAML file and overridden "
        "as --field value (see `rmguard train --help-fields`).",
    )
    parser.add_argument("--config", help="YAML file of TrainConfig fields")
    parser.add_argument("--help-fields", action="store_true", help="list every config field and exit")
    parser.set_defaults(func=run, accepts_overrides=True)


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
