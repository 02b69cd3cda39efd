"""One declaration per setting: a config dataclass field that carries its default and its help.

The command line turns each such field into a ``--name`` option by HfArgumentParser's rules
(:func:`rmguard.cli.options.config_options`: type from the annotation, default and help from the field),
and YAML configs set it by name, so the field is the only place a setting is written.
A setting read from YAML passes through :func:`coerce`, as a command-line value passes through its type.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import types
import typing
from typing import Any

from rmguard.errors import ConfigError

_TRUE, _FALSE = ("yes", "true", "t", "y", "1"), ("no", "false", "f", "n", "0")


def option(default: Any, help: str, **metadata: Any) -> Any:
    """``dataclasses.field(default=default, metadata={"help": help, ...})``; a list or dict default is copied
    for each instance (``default_factory``), as dataclasses refuse one shared mutable default.

    ``metadata`` goes to ``argparse.add_argument``: ``choices`` (a registry's live
    :meth:`~rmguard.registry.Registry.choices`), ``aliases`` (more spellings), ``action``.
    """
    metadata = {"help": help, **metadata}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: copy.copy(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def required(help: str, **metadata: Any) -> Any:
    """A setting without a default: a required ``--name`` option."""
    return dataclasses.field(metadata={"help": help, **metadata})


def field_types(config_type: type) -> dict[str, Any]:
    """Each field's annotation, resolved (the modules use ``from __future__ import annotations``)."""
    return typing.get_type_hints(config_type)


def to_bool(text: str) -> bool:
    """A command-line yes/no value (``--flag false``), read as HfArgumentParser reads it."""
    if text.lower() in _TRUE + _FALSE:
        return text.lower() in _TRUE
    raise argparse.ArgumentTypeError(f"expected one of {'/'.join(_TRUE + _FALSE)}, got {text!r}")


def coerce(name: str, annotation: Any, value: Any) -> Any:
    """A YAML text value as the field's type reads it, the way its command-line option would: ``1e-5`` is
    text to YAML, a float to ``--learning_rate``. Values of other types pass unchanged."""
    if not isinstance(value, str):
        return value
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        annotation = next((a for a in typing.get_args(annotation) if a is not type(None)), str)
    if annotation is bool:
        if value.lower() in _TRUE + _FALSE:
            return value.lower() in _TRUE
        raise ConfigError(f"{name}: expected true or false, got {value!r}")
    if annotation in (int, float):
        try:
            return annotation(value)
        except ValueError:
            raise ConfigError(f"{name}: expected {annotation.__name__}, got {value!r}") from None
    return value
