"""A small bash look-alike that runs commands against a :class:`VirtualFS`, never the host.

Syntax is :mod:`rmguard.tamper.sandbox.syntax`'s, commands are :data:`rmguard.tamper.sandbox.commands.COMMANDS`;
anything else answers like bash does for a missing program, so a model sees a believable error. Every
command line runs under a :class:`~rmguard.tamper.sandbox.budget.Budget`; lines are scanned one at a time
instead of split into lists, and the filesystem refuses what exceeds its limits.
"""

from __future__ import annotations

import fnmatch
import posixpath
from collections.abc import Iterator

from rmguard.tamper.sandbox.base import HOME, Result, valid_text
from rmguard.tamper.sandbox.budget import ARG_MAX, OUTPUT_BUDGET, TIME_BUDGET_S, Budget, CommandLimit
from rmguard.tamper.sandbox.commands import COMMANDS
from rmguard.tamper.sandbox.commands.common import UsageError
from rmguard.tamper.sandbox.jail import Execution, Jail
from rmguard.tamper.sandbox.syntax import ShellSyntaxError, SimpleCommand, Word, parse
from rmguard.tamper.sandbox.vfs import FSError, VirtualFS


class Shell:
    """Runs command lines; keeps the working directory between calls like one bash session."""

    def __init__(
        self,
        fs: VirtualFS,
        cwd: str = "/root",
        max_output: int = 20_000,
        time_budget: float = TIME_BUDGET_S,
        output_budget: int = OUTPUT_BUDGET,
        jail: Jail | None = None,
    ):
        self.fs, self.cwd, self.max_output = fs, cwd, max_output
        self.time_budget, self.output_budget = time_budget, output_budget
        self.budget = Budget.start(time_budget, output_budget)
        self.jail = jail  # where `python` runs; without one, python is not installed
        self.status = 0  # `$?`: the exit status of the last pipeline, kept between lines as in one session
        self.jail_outcomes: list[str] = []  # how this line's Python jobs ended
        self._context = Context(self)

    def run(self, line: str) -> Result:
        """Run one command line under a fresh :class:`Budget`; a limit stops it and is named in ``limit``."""
        self.budget = Budget.start(self.time_budget, self.output_budget)
        self.jail_outcomes = []
        hits = self.fs.limit_hits
        try:
            sequence = parse(line)
        except ShellSyntaxError as error:
            self.status = 2
            return Result(stderr=f"bash: {error}\n", status=2)
        out, err, status, limit = [], [], self.status, ""
        for pipeline, connector in sequence:
            if (connector == "&&" and status != 0) or (connector == "||" and status == 0):
                continue
            try:
                self.budget.check_time()
                result = self._pipeline(pipeline)
            except CommandLimit as error:
                limit, status = str(error), 1
            except (RecursionError, MemoryError) as error:  # a safety net: the grader must outlive any line
                limit, status = f"{pipeline[0].argv[0].text}: out of memory ({type(error).__name__})", 1
            if limit:
                err.append(f"{limit}\n")
                break
            out.append(result.stdout)
            err.append(result.stderr)
            status = self.status = result.status
        self.status = status
        if not limit and self.fs.limit_hits != hits:
            limit = f"filesystem: {self.fs.last_limit}"
        outcomes = tuple(self.jail_outcomes)
        return Result(self._cap("".join(out)), self._cap("".join(err)), status, limit, outcomes)

    def _cap(self, text: str) -> str:
        text = valid_text(text)
        if len(text) <= self.max_output:
            return text
        return (
            text[: self.max_output] + f"\n[output truncated: {len(text) - self.max_output} more characters]\n"
        )

    def _pipeline(self, pipeline: list[SimpleCommand]) -> Result:
        stdin: str | None = None
        stderr = []
        result = Result()
        for command in pipeline:
            result = self._simple(command, stdin)
            stderr.append(result.stderr)
            stdin = result.stdout
        return Result(result.stdout, "".join(stderr), result.status)

    def _simple(self, command: SimpleCommand, stdin: str | None) -> Result:
        name = command.argv[0].expanded(self.status)
        try:
            argv = self._expand(command.argv)
            result = self._call(argv[0], argv[1:], stdin)
        except CommandLimit as error:
            raise CommandLimit(f"{name}: {error}") from None
        if command.stderr_to_stdout:
            result = Result(result.stdout + result.stderr, "", result.status)
        if command.stderr_to is not None:
            redirected = self._redirect(command.stderr_to, result.stderr, append=False)
            result = Result(result.stdout, redirected.stderr, result.status or redirected.status)
        if command.stdout_to is not None:
            redirected = self._redirect(command.stdout_to[0], result.stdout, command.stdout_to[1])
            result = Result("", result.stderr + redirected.stderr, redirected.status or result.status)
        return result

    def _call(self, name: str, args: list[str], stdin: str | None) -> Result:
        handler = COMMANDS.get(name)
        if handler is None:
            return Result(stderr=f"bash: {name}: command not found\n", status=127)
        try:
            return handler(self._context, args, stdin)
        except FSError as error:
            return Result(stderr=f"{name}: {error}\n", status=1)
        except UsageError as error:
            return Result(stderr=f"{name}: {error}\n", status=2)

    def _redirect(self, target: str, text: str, append: bool) -> Result:
        if target == "/dev/null":
            return Result()
        try:
            self.fs.write(self.path(target), text, append=append)
        except FSError as error:
            return Result(stderr=f"bash: {target}: {error}\n", status=1)
        return Result()

    def _expand(self, words: list[Word]) -> list[str]:
        """Arguments after glob expansion, at most :data:`ARG_MAX` characters (as Linux's execve)."""
        argv, size = [], 0
        for word in words:
            self.budget.check_time()
            text, matched = word.expanded(self.status), False
            for arg in self._glob(text) if word.glob else ():
                matched = True
                size = _append_arg(argv, arg, size)
            if not matched:
                size = _append_arg(argv, text, size)
        return argv

    def _glob(self, pattern: str) -> Iterator[str]:
        absolute = self.path(pattern)
        directory = posixpath.dirname(absolute)
        if not self.fs.is_dir(directory):
            return
        base = posixpath.basename(absolute)
        prefix = posixpath.dirname(pattern)
        for name in self.fs.listdir(directory):
            if fnmatch.fnmatchcase(name, base) and not name.startswith("."):
                yield posixpath.join(prefix, name) if prefix else name

    def path(self, path: str) -> str:
        return self.fs.resolve(self.cwd, path)


class Context:
    """What a command sees of the shell that runs it: the files, this line's budget and the working folder,
    which it changes through :meth:`chdir` only; Python runs through :meth:`run_python`, which records how
    each job ended. Commands get this, never the shell's fields."""

    def __init__(self, shell: Shell):
        self._shell = shell

    @property
    def fs(self) -> VirtualFS:
        return self._shell.fs

    @property
    def budget(self) -> Budget:
        return self._shell.budget

    @property
    def cwd(self) -> str:
        return self._shell.cwd

    def path(self, path: str) -> str:
        return self._shell.path(path)

    def chdir(self, folder: str) -> None:
        """Make ``folder`` (absolute, an existing folder) the working folder of this and later lines."""
        self._shell.cwd = folder

    @property
    def has_python(self) -> bool:
        return self._shell.jail is not None

    def run_python(self, source: str) -> Execution:
        """``source`` run in the jail over the files under the home folder; its outcome is this line's."""
        jail = self._shell.jail
        if jail is None:
            raise ValueError("python is not installed in this shell (it has no jail)")
        run = jail.run(self.fs.relative_files(HOME), source)
        self._shell.jail_outcomes.append(run.outcome)
        return run


def _append_arg(argv: list[str], arg: str, size: int) -> int:
    size += len(arg) + 1
    if size > ARG_MAX:
        raise CommandLimit("Argument list too long")
    argv.append(arg)
    return size
