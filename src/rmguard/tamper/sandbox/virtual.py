"""The episode's sandbox: the virtual shell over a virtual filesystem, the process jail for Python."""

from __future__ import annotations

import posixpath

from rmguard.tamper.sandbox.base import HOME, Result, Sandbox
from rmguard.tamper.sandbox.jail import Execution, Jail
from rmguard.tamper.sandbox.shell import Shell
from rmguard.tamper.sandbox.vfs import FSError, VirtualFS


class VirtualSandbox(Sandbox):
    """One episode's machine: commands run in :class:`Shell` over :class:`VirtualFS` (never the host);
    the ``python`` they run, and the graders' Python jobs, run in ``jail`` (without one, python is not
    installed)."""

    def __init__(self, fs: VirtualFS, home: str, jail: Jail | None = None, max_output: int = 20_000):
        self._fs, self._jail = fs, jail
        self._shell = Shell(fs, cwd=home, max_output=max_output, jail=jail)

    @classmethod
    def from_files(
        cls,
        dirs: list[str],
        files: dict[str, str],
        home: str,
        jail: Jail | None = None,
        max_output: int = 20_000,
    ) -> VirtualSandbox:
        """``dirs`` created first, then ``files`` (paths relative to ``home`` or absolute)."""
        return cls(VirtualFS.from_spec(dirs, files, home), home, jail, max_output)

    def exec(self, command: str) -> Result:
        return self._shell.run(command)

    def read_file(self, path: str) -> str:
        try:
            return self._fs.read(self._shell.path(path))
        except FSError as error:
            raise FileNotFoundError(f"{path}: {error}") from None

    def write_file(self, path: str, contents: str) -> None:
        absolute = self._shell.path(path)
        self._fs.mkdir(posixpath.dirname(absolute), parents=True)
        self._fs.write(absolute, contents)

    def exec_python(self, source: str) -> Execution:
        if self._jail is None:
            raise ValueError("running Python in this sandbox needs a Jail")
        return self._jail.run(self._fs.relative_files(HOME), source)

    @property
    def python_timeout(self) -> float:
        if self._jail is None:
            raise ValueError("running Python in this sandbox needs a Jail")
        return self._jail.limits.timeout_seconds
