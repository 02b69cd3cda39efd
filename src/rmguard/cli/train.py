"""rmguard train --config FILE.yaml [--any_field value ...]"""

from __future__ import annotations

import argparse
from typing import NoReturn

from rmguard.cli import options
from rmguard.errors import ConfigError
from rmguard.training.config import TrainConfig, config_fields, load_config
from rmguard.training.objectives import hyperparameters


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a reward model",
        description="Train a reward model. Every config field below can be set in the YAML file and "
        "overridden as --field value; TRL's names (RewardConfig, ModelConfig, ScriptArguments) are accepted.",
        add_help=False,
        parents=[field_parser()],
    )
    # The fields are options of this parser, parsed with the rest; only those given on the command line
    # reach load_config (over the YAML file's), and --help lists them in their own section.
    options.given_options(parser)
    for action in parser._actions:
        action.help = argparse.SUPPRESS
    parser.add_argument(
        "-h", "--help", action=FieldsHelp, help="show this help, every config field included, and exit"
    )
    parser.add_argument("--config", default=None, help="YAML file of config fields")
    parser.add_argument("--help-fields", action="store_true", help="list only the config fields and exit")
    parser.set_defaults(func=run)


class FieldsHelp(argparse.Action):
    """``--help`` shows the sub-command's own options and then every config field with its help and
    default, as ``trl reward --help`` does."""

    def __init__(self, option_strings: list[str], dest: str, help: str | None = None):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(self, parser, namespace, values, option_string=None) -> NoReturn:
        fields = field_parser().format_help().split("\noptions:\n", 1)[1]  # its options, not its usage
        print(parser.format_help() + "\nconfig fields (YAML keys, or --field value):\n" + fields, end="")
        parser.exit(0)


def field_parser() -> argparse.ArgumentParser:
    """The config fields as options (and each registered objective's own hyperparameters)."""
    parser = options.config_options(TrainConfig, extra=_hyperparameter_options)
    parser.prog = "rmguard train"
    return parser


def _hyperparameter_options(parser: argparse.ArgumentParser) -> None:
    for name, setting in hyperparameters().items():
        spellings = [f"--{name}", *([f"--{name.replace('_', '-')}"] if "_" in name else [])]
        parser.add_argument(*spellings, type=setting.kind, default=setting.default, help=setting.help)


def parse(args: argparse.Namespace) -> TrainConfig:
    names = [f.name for f in config_fields()] + list(hyperparameters())
    return load_config(args.config, options.given_settings(args, names))


def run(args: argparse.Namespace) -> int:
    if args.help_fields:
        field_parser().print_help()
        return 0
    from rmguard.data.sources import check_source

    config = parse(args)
    for source in (config.train_file, config.eval_file):
        if source:  # a missing file is one line here, before the training stack is imported
            check_source(source)
    _claim_output(args, config)
    from rmguard.training.trainer import train

    result = train(config)
    print(f"model: {result.output_dir} ({result.global_step} steps)")
    return 0


def _claim_output(args: argparse.Namespace, config: TrainConfig) -> None:
    """One run per output_dir; 'latest' needs a checkpoint there to continue from."""
    from rmguard import run_folder
    from rmguard.training.checkpoints import list_checkpoints

    output = config.output_dir
    if (
        config.resume_from_checkpoint == "latest"
        and run_folder.holds_run(output)
        and not list_checkpoints(output)
    ):
        raise ConfigError(
            f"{output} holds a run without a checkpoint to continue from (save_steps); start over with "
            f"{run_folder.OVERWRITE}"
        )
    inputs = [config.train_file, config.eval_file, config.model_name_or_path]
    options.claim_output(args, output, config, inputs, checkpoints=list_checkpoints)
