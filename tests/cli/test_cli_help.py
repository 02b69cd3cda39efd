"""Every option of the sub-commands below says what it does and what its default is in ``--help``.

(bon, rloo, tamper and demo are checked where their parsers are defined.)
"""

from __future__ import annotations

import argparse

import pytest

from rmguard.cli import build_parser
from rmguard.cli.options import DefaultsHelpFormatter
from rmguard.cli.train import field_parser

OWNED = [
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
]


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


def _undocumented(parser: argparse.ArgumentParser) -> list[str]:
    """Options whose help is empty or shows neither a default nor that the option is required."""
    formatter = DefaultsHelpFormatter(parser.prog)
    missing = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction) or action.default is argparse.SUPPRESS:
            continue
        text = formatter._get_help_string(action) if parser.formatter_class is DefaultsHelpFormatter else None
        text = (
            text if text is not None else argparse.ArgumentDefaultsHelpFormatter("x")._get_help_string(action)
        )
        if not (action.help or "").strip() or not ("(default" in text or "(required)" in text):
            missing.append(action.option_strings[0] if action.option_strings else action.dest)
    return missing


@pytest.mark.parametrize("name", OWNED)
def test_every_option_has_help_and_a_shown_default(name):
    parser = _subparsers()[name]
    assert parser.formatter_class is DefaultsHelpFormatter
    assert _undocumented(parser) == []
    text = parser.format_help()
    assert "(default:" in text or "(required)" in text


def test_train_help_lists_every_config_field_with_its_default(capsys):
    assert _undocumented(field_parser()) == []
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--help"])
    text = capsys.readouterr().out
    for field in ("--learning_rate", "--center_rewards_coefficient", "--eval_strategy", "--optim", "--dtype"):
        assert field in text
    assert "(default: 1e-05)" in text and "(default: adamw_torch)" in text


def test_a_missing_default_would_be_caught():
    parser = argparse.ArgumentParser(formatter_class=DefaultsHelpFormatter)
    parser.add_argument("--quiet-one", default=3)
    parser.add_argument("--ok", default=3, help="documented")
    parser.add_argument("--must", required=True, help="required one")
    assert _undocumented(parser) == ["--quiet-one"]
    assert "(required)" in parser.format_help() and "(default: 3)" in parser.format_help()
