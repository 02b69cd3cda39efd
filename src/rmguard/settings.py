"""One declaration per setting: a config dataclass field that carries its default and its help.

``HfArgumentParser`` turns each such field into a ``--name`` option (type from the annotation, default and
help from the field), and YAML configs set it by name, so the field is the only place a setting is written.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any


def option(default: Any, help: str) -> Any:
    """``dataclasses.field(default=default, metadata={"help": help})``; a list or dict default is copied for
    each instance (``default_factory``), as dataclasses refuse one shared mutable default."""
    metadata = {"help": help}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: copy.copy(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)
