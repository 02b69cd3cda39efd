"""The ``rmguard`` command line: one sub-command per module in this package (``SUBCOMMAND_MODULES``, each
named as its command, ``_`` for ``-``; ``tamper``'s actions run, replay, train and list are its own
sub-commands), and two helper modules, ``options`` (shared options, the config-dataclass path) and ``progress``.

Each sub-command module exposes ``register(subparsers)`` which adds its parser and sets ``func`` to a
function ``(args) -> int``. The functions only parse and call the library.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import NoReturn

from rmguard.cli.options import DefaultsHelpFormatter, interrupted_note
from rmguard.errors import RMGuardError
from rmguard.optional import missing_package_message

SUBCOMMAND_MODULES = [
    "train",
    "score",
    "calibrate",
    "serve",
    "merge",
    "export",
    "average",
    "label",
    "split",
    "eval",
    "diagnose",
    "bon",
    "rloo",
    "demo",
    "study",
    "study_rl",
    "tamper",
]


class OneLineParser(argparse.ArgumentParser):
    """Usage mistakes are one line naming the option (``--help`` still shows the whole usage)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="rmguard", description=__import__("rmguard").__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(f"rmguard.cli.{name}").register(subparsers)
    for subparser in subparsers.choices.values():  # defaults shown in every sub-command's --help
        subparser.formatter_class = DefaultsHelpFormatter
    return parser


def _quiet_libraries() -> None:
    """Load reports and weight-loading bars of transformers are noise to a CLI user; errors still show.

    Said in the environment too, before the libraries are imported, so that worker processes (started
    fresh: the demo's proxies) and tqdm bars outside transformers' control (GGUF conversion) are quiet;
    off a terminal every bar is, so a log holds rmguard's own lines only."""
    import os

    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # transformers' bars follow it at import
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")  # "Generating train split" bars
    if not sys.stderr.isatty():
        os.environ.setdefault("TQDM_DISABLE", "1")  # read by tqdm when it is imported

    if (
        "transformers" in sys.modules
    ):  # already imported (a caller's process): the variables are read at import
        from transformers.utils import logging

        logging.set_verbosity_error()
        logging.disable_progress_bar()
    if "datasets" in sys.modules:  # already imported: the variable is read at import only
        sys.modules["datasets"].disable_progress_bars()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)  # before any heavy import: --help and usage errors answer at once
    _quiet_libraries()
    try:
        return int(args.func(args) or 0)
    except RMGuardError as error:
        print(f"rmguard {args.command}: error: {error}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as error:
        if not error.name or error.name.split(".")[0] == "rmguard":
            raise  # a bug in rmguard, not a missing package
        print(f"rmguard {args.command}: error: {missing_package_message(error.name)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        own_line = "\n" if sys.stderr.isatty() else ""  # a progress bar may hold the line
        print(f"{own_line}rmguard {args.command}: interrupted{interrupted_note(args, argv)}", file=sys.stderr)
        return 130
