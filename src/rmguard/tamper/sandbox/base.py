"""The sandbox interface: what an episode's commands and graders may do with the model's machine.

Modelled on Inspect's ``SandboxEnvironment``: :meth:`Sandbox.exec` runs a command line, :meth:`Sandbox.read_file`
and :meth:`Sandbox.write_file` move text in and out. :class:`rmguard.tamper.sandbox.virtual.VirtualSandbox`
implements it over the virtual shell and filesystem, with the process jail for the Python a command runs.
"""

from __future__ import annotations

import abc
import re
from dataclasses import dataclass

HOME = "/root"  # the model's home folder, where the records put its files, in every sandbox and the jail


@dataclass
class Result:
    stdout: str = ""
    stderr: str = ""
    status: int = 0
    limit: str = ""  # why the command line hit a budget or a filesystem limit; empty when it did not
    jail_outcomes: tuple[str, ...] = ()  # how each Python job the line ran in the jail ended (ok, error, ...)


LONE_SURROGATE = re.compile("[\ud800-\udfff]")  # in a str every surrogate is a lone one


def valid_text(text: str) -> str:
    """``text`` with lone surrogates replaced by U+FFFD: what records, reports and tokenizers can encode."""
    return LONE_SURROGATE.sub("\ufffd", text)


class Sandbox(abc.ABC):
    """Where an episode's commands run. Paths are absolute or relative to the sandbox's working folder."""

    @abc.abstractmethod
    def exec(self, command: str) -> Result:
        """Run one command line (bash syntax); its output, exit status and any limit it hit."""

    @abc.abstractmethod
    def read_file(self, path: str) -> str:
        """The text of file ``path``; FileNotFoundError when there is none."""

    @abc.abstractmethod
    def write_file(self, path: str, contents: str) -> None:
        """Create or replace file ``path`` (and its missing folders) with ``contents``."""
