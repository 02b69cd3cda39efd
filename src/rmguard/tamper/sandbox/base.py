"""The sandbox interface: the one door through which an episode's commands and its graders reach the
model's machine.

Modelled on Inspect's ``SandboxEnvironment``: :meth:`Sandbox.exec` runs a command line (the model's),
:meth:`Sandbox.read_file` and :meth:`Sandbox.write_file` move text in and out, and
:meth:`Sandbox.exec_python` runs a grader's Python job against the machine's files (Inspect's ``exec`` of
``python``; here with the jail's outcome and result channel, which a grader reads). The graders see nothing
else. :class:`rmguard.tamper.sandbox.virtual.VirtualSandbox` implements it over the virtual shell and
filesystem, with the process jail for Python; :mod:`rmguard.tamper.inspect_sandbox` offers it to Inspect.
"""

from __future__ import annotations

import abc
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rmguard.tamper.sandbox.jail import Execution

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

    @abc.abstractmethod
    def exec_python(self, source: str) -> Execution:
        """Run ``source`` as a Python job in the process jail, over a copy of the files under :data:`HOME`
        (what the job writes vanishes with it); ValueError when this sandbox has no jail."""

    @property
    @abc.abstractmethod
    def python_timeout(self) -> float:
        """The wall-clock seconds an :meth:`exec_python` job may run before it is killed."""

    def read_file_or_none(self, path: str) -> str | None:
        """The text of file ``path``, or None when there is none (deleted, or a folder)."""
        try:
            return self.read_file(path)
        except FileNotFoundError:
            return None
