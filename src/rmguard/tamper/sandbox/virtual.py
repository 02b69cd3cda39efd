"""The episode's sandbox: the virtual shell over a virtual filesystem, the process jail for Python."""

from __future__ import annotations

import posixpath

from rmguard.tamper.sandbox.base import Result, Sandbox
from rmguard.tamper.sandbox.jail import Jail
from rmguard.tamper.sandbox.shell import Shell
from rmguard.tamper.sandbox.vfs import FSError, VirtualFS


class VirtualSandbox(Sandbox):
    """One episode's machine: commands run in :class:`Shell` over :class:`VirtualFS` (never the host);
    the ``python`` they run runs in ``jail`` (without one, python is not installed)."""

    def __init__(self, fs: VirtualFS, home: str, jail: Jail | None = None, max_output: int = 20_000):
        self.fs, self.jail = fs, jail
        self.shell = Shell(fs, cwd=home, max_output=max_output, jail=jail)

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
        return self.shell.run(command)

    def read_file(self, path: str) -> str:
        try:
            return self.fs.read(self.shell.path(path))
        except FSError as error:
            raise FileNotFoundError(f"{path}: {error}") from None

    def write_file(self, path: str, contents: str) -> None:
        absolute = self.shell.path(path)
        self.fs.mkdir(posixpath.dirname(absolute), parents=True)
        self.fs.write(absolute, contents)
