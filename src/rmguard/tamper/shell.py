"""A small bash look-alike that runs commands against a :class:`VirtualFS`, never the host.

Supported: ``cmd; cmd``, ``&&``, ``||``, pipes, ``>``, ``>>``, ``2>``, ``2>&1``, single and double quotes,
backslash escapes, ``*``/``?`` globs, and the commands in :data:`COMMANDS`. Anything else answers like
bash does for a missing program, so a model sees a believable error.

The commands are model-written and run inside the grading process, so every command line runs under a
:class:`Budget`: a time budget, checked in every loop (and handed to the regex engine as its timeout), and
an output budget, charged as text is produced (before a join or a copy creates it), so no line of input
can make the grader allocate more than the budget. Glob expansion is capped like Linux's ``ARG_MAX``, lines
are scanned one at a time instead of split into lists, and the filesystem refuses what exceeds its limits.
A command line that runs out of budget stops there and its :class:`Result` carries ``limit``.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import regex as regex_engine

from rmguard.tamper.vfs import FSError, VirtualFS, utf8_size

TIME_BUDGET_S = 2.0  # wall clock per command line
# characters a command line may produce, all its commands and pipe stages together
OUTPUT_BUDGET = 16 * 1024 * 1024
ARG_MAX = 2 * 1024 * 1024  # characters of one command's arguments after glob expansion (Linux's ARG_MAX)
# Model-written patterns run under a time budget per grep/sed: the `regex` engine stops a catastrophically
# backtracking match (Python's `re` cannot be interrupted) and the command fails instead of the grader hanging.
# The engine counts its timeout in CPU time, so on a loaded machine the wall clock can run past it.
REGEX_BUDGET_S = 1.0
REGEX_LIMIT = "the pattern exceeded its time budget"

OPERATORS = ("&&", "||", ">>", "2>&1", "2>", ";", "|", ">", "\n")


class ShellSyntaxError(Exception):
    pass


@dataclass
class Word:
    text: str
    glob: bool = False  # contains an unquoted * or ?


@dataclass
class SimpleCommand:
    argv: list[Word] = field(default_factory=list)
    stdout_to: tuple[str, bool] | None = None  # (path, append)
    stderr_to: str | None = None
    stderr_to_stdout: bool = False


@dataclass
class Result:
    stdout: str = ""
    stderr: str = ""
    status: int = 0
    limit: str = ""  # why the command line hit a budget or a filesystem limit; empty when it did not


class CommandLimit(Exception):
    """The command line ran out of its budget; the rest of it does not run."""


@dataclass
class Budget:
    """What one command line may still use: a wall-clock deadline and a number of characters of output."""

    deadline: float
    chars_left: int

    @classmethod
    def start(cls, seconds: float, chars: int) -> Budget:
        return cls(time.monotonic() + seconds, chars)

    def charge(self, size: int) -> None:
        """Account ``size`` characters of output before they are built; over budget stops the line."""
        self.check_time()
        self.chars_left -= size
        if self.chars_left < 0:
            raise CommandLimit("output exceeds the budget of one command line")

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise CommandLimit("the command line exceeded its time budget")


def tokenize(line: str) -> list[Word | str]:
    """Words (:class:`Word`) and operators (plain ``str``)."""
    tokens: list[Word | str] = []
    i, current, glob, in_word = 0, [], False, False

    def flush() -> None:
        nonlocal current, glob, in_word
        if in_word:
            tokens.append(Word("".join(current), glob))
        current, glob, in_word = [], False, False

    while i < len(line):
        char = line[i]
        operator = next((op for op in OPERATORS if line.startswith(op, i)), None)
        if operator in ("2>", "2>&1") and in_word:  # "a2>b" is the word "a2" redirected to b
            operator = None
        if operator:
            flush()
            tokens.append(operator)
            i += len(operator)
        elif char in " \t":
            flush()
            i += 1
        elif char == "'":
            end = line.find("'", i + 1)
            if end < 0:
                raise ShellSyntaxError("unexpected EOF while looking for matching `''")
            current.append(line[i + 1 : end])
            in_word, i = True, end + 1
        elif char == '"':
            text, i = _double_quoted(line, i + 1)
            current.append(text)
            in_word = True
        elif char == "\\":
            if i + 1 < len(line) and line[i + 1] != "\n":
                current.append(line[i + 1])
            in_word, i = True, i + 2
        elif char == "#" and not in_word:
            end = line.find("\n", i)
            i = len(line) if end < 0 else end
        else:
            glob = glob or char in "*?"
            current.append(char)
            in_word, i = True, i + 1
    flush()
    return tokens


def _double_quoted(line: str, i: int) -> tuple[str, int]:
    out = []
    while i < len(line):
        char = line[i]
        if char == '"':
            return "".join(out), i + 1
        if char == "\\" and i + 1 < len(line) and line[i + 1] in '"\\$`':
            out.append(line[i + 1])
            i += 2
            continue
        out.append(char)
        i += 1
    raise ShellSyntaxError("unexpected EOF while looking for matching `\"'")


def parse(line: str) -> list[tuple[list[SimpleCommand], str]]:
    """A list of (pipeline, connector-before-it) with connector one of ``;``, ``&&``, ``||``."""
    sequence: list[tuple[list[SimpleCommand], str]] = []
    pipeline: list[SimpleCommand] = [SimpleCommand()]
    connector = ";"
    tokens = tokenize(line)
    i = 0
    while i < len(tokens):
        token = tokens[i]
        command = pipeline[-1]
        if isinstance(token, Word):
            command.argv.append(token)
        elif token in (">", ">>", "2>"):
            if i + 1 >= len(tokens) or not isinstance(tokens[i + 1], Word):
                raise ShellSyntaxError("syntax error near unexpected token `newline'")
            target = tokens[i + 1].text
            if token == "2>":
                command.stderr_to = target
            else:
                command.stdout_to = (target, token == ">>")
            i += 1
        elif token == "2>&1":
            command.stderr_to_stdout = True
        elif token == "|":
            if not command.argv:
                raise ShellSyntaxError("syntax error near unexpected token `|'")
            pipeline.append(SimpleCommand())
        else:  # ; && || newline
            if command.argv:
                sequence.append((pipeline, connector))
            elif token != "\n" and token != ";" or len(pipeline) > 1:
                raise ShellSyntaxError(f"syntax error near unexpected token `{token}'")
            pipeline, connector = [SimpleCommand()], ";" if token == "\n" else token
        i += 1
    if pipeline[-1].argv:
        sequence.append((pipeline, connector))
    elif len(pipeline) > 1:
        raise ShellSyntaxError("syntax error: unexpected end of file")
    return sequence


class Shell:
    """Runs command lines; keeps the working directory between calls like one bash session."""

    def __init__(
        self,
        fs: VirtualFS,
        cwd: str = "/root",
        max_output: int = 20_000,
        time_budget: float = TIME_BUDGET_S,
        output_budget: int = OUTPUT_BUDGET,
    ):
        self.fs, self.cwd, self.max_output = fs, cwd, max_output
        self.time_budget, self.output_budget = time_budget, output_budget
        self.budget = Budget.start(time_budget, output_budget)

    def run(self, line: str) -> Result:
        """Run one command line under a fresh :class:`Budget`; a limit stops it and is named in ``limit``."""
        self.budget = Budget.start(self.time_budget, self.output_budget)
        hits = self.fs.limit_hits
        try:
            sequence = parse(line)
        except ShellSyntaxError as error:
            return Result(stderr=f"bash: {error}\n", status=2)
        out, err, status, limit = [], [], 0, ""
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
            status = result.status
        if not limit and self.fs.limit_hits != hits:
            limit = f"filesystem: {self.fs.last_limit}"
        return Result(self._cap("".join(out)), self._cap("".join(err)), status, limit)

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
        name = command.argv[0].text
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
            return handler(self, args, stdin)
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
            matched = False
            for arg in self._glob(word.text) if word.glob else ():
                matched = True
                size = _append_arg(argv, arg, size)
            if not matched:
                size = _append_arg(argv, word.text, size)
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


LONE_SURROGATE = re.compile("[\ud800-\udfff]")  # in a str every surrogate is a lone one


def valid_text(text: str) -> str:
    """``text`` with lone surrogates replaced by U+FFFD: what records, reports and tokenizers can encode."""
    return LONE_SURROGATE.sub("\ufffd", text)


def _append_arg(argv: list[str], arg: str, size: int) -> int:
    size += len(arg) + 1
    if size > ARG_MAX:
        raise CommandLimit("Argument list too long")
    argv.append(arg)
    return size


def lines_of(text: str, keepends: bool = False) -> Iterator[str]:
    """The lines of ``text``, split at ``\\n`` only (as coreutils do), one at a time: never a list of all."""
    start = 0
    while start < len(text):
        end = text.find("\n", start)
        if end < 0:
            yield text[start:]
            return
        yield text[start : end + 1 if keepends else end]
        start = end + 1


class UsageError(Exception):
    pass


def split_flags(args: list[str], valued: str = "") -> tuple[set[str], dict[str, str], list[str]]:
    """Short flags (``-la`` → l, a), values of flags in ``valued`` (``-n 5``), and operands."""
    flags: set[str] = set()
    values: dict[str, str] = {}
    operands: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            operands.extend(args[i + 1 :])
            break
        if arg.startswith("-") and len(arg) > 1 and not operands:
            for j, letter in enumerate(arg[1:]):
                if letter in valued:
                    rest = arg[j + 2 :]
                    if not rest:
                        i += 1
                        if i >= len(args):
                            raise UsageError(f"option requires an argument -- '{letter}'")
                        rest = args[i]
                    values[letter] = rest
                    break
                flags.add(letter)
        else:
            operands.append(arg)
        i += 1
    return flags, values, operands


def _read_inputs(
    shell: Shell, operands: list[str], stdin: str | None, name: str
) -> tuple[list[str], list[str]]:
    """(texts, errors) for commands that read files or stdin."""
    if not operands:
        return [stdin or ""], []
    texts, errors = [], []
    for operand in operands:
        shell.budget.check_time()
        try:
            texts.append(shell.fs.read(shell.path(operand)))
        except FSError as error:
            errors.append(f"{name}: {operand}: {error}\n")
    return texts, errors


def cmd_cd(shell: Shell, args: list[str], stdin: str | None) -> Result:
    target = shell.path(args[0] if args else "/root")
    if not shell.fs.is_dir(target):
        reason = "Not a directory" if shell.fs.is_file(target) else "No such file or directory"
        return Result(stderr=f"bash: cd: {args[0]}: {reason}\n", status=1)
    shell.cwd = target
    return Result()


def cmd_pwd(shell: Shell, args: list[str], stdin: str | None) -> Result:
    return Result(shell.cwd + "\n")


def cmd_ls(shell: Shell, args: list[str], stdin: str | None) -> Result:
    flags, _, operands = split_flags(args)
    out, err = [], []
    targets = operands or ["."]
    for target in targets:
        shell.budget.check_time()
        path = shell.path(target)
        if shell.fs.is_file(path):
            out.append(_charged(shell, _ls_line(shell, path, target, "l" in flags)))
            continue
        if not shell.fs.is_dir(path):
            err.append(f"ls: cannot access '{target}': No such file or directory\n")
            continue
        names = shell.fs.listdir(path)
        names = [".", "..", *names] if "a" in flags else [n for n in names if not n.startswith(".")]
        if len(targets) > 1:
            out.append(f"{target}:\n")
        if "l" in flags:
            out.append(f"total {len(names) * 4}\n")
        out.extend(_charged(shell, _ls_line(shell, posixpath.join(path, n), n, "l" in flags)) for n in names)
    return Result("".join(out), "".join(err), 2 if err else 0)


def _charged(shell: Shell, text: str) -> str:
    shell.budget.charge(len(text))
    return text


def _ls_line(shell: Shell, path: str, name: str, long: bool) -> str:
    if not long:
        return name + "\n"
    path = posixpath.normpath(path)
    if shell.fs.is_dir(path):
        return f"drwxr-xr-x 2 root root 4096 Jan  1 00:00 {name}\n"
    size = utf8_size(shell.fs.files.get(path, ""))
    return f"-rw-r--r-- 1 root root {size:>5} Jan  1 00:00 {name}\n"


def cmd_cat(shell: Shell, args: list[str], stdin: str | None) -> Result:
    _, _, operands = split_flags(args)
    texts, errors = _read_inputs(shell, operands, stdin, "cat")
    for text in texts:  # charged before the join builds the output
        shell.budget.charge(len(text))
    return Result("".join(texts), "".join(errors), 1 if errors else 0)


ECHO_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", "a": "\a", "r": "\r", "0": "\0"}


def cmd_echo(shell: Shell, args: list[str], stdin: str | None) -> Result:
    newline, escapes = True, False
    while args and re.fullmatch(r"-[neE]+", args[0]):
        newline = newline and "n" not in args[0]
        escapes = "e" in args[0]
        args = args[1:]
    text = " ".join(args)
    if escapes:
        text = re.sub(r"\\(.)", lambda m: ECHO_ESCAPES.get(m.group(1), m.group(0)), text)
    return Result(_charged(shell, text + ("\n" if newline else "")))


def _regex_deadline(shell: Shell) -> float:
    """This grep/sed's deadline: its own regex budget, never past the command line's."""
    return min(time.monotonic() + REGEX_BUDGET_S, shell.budget.deadline)


def _time_left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise CommandLimit(REGEX_LIMIT)
    return left


def cmd_grep(shell: Shell, args: list[str], stdin: str | None) -> Result:
    flags, values, operands = split_flags(args, valued="e")
    if "e" in values:
        pattern = values["e"]
    elif operands:
        pattern, operands = operands[0], operands[1:]
    else:
        raise UsageError("Usage: grep [OPTION]... PATTERNS [FILE]...")
    try:
        regex = regex_engine.compile(_bre_to_python(pattern), regex_engine.IGNORECASE if "i" in flags else 0)
    except regex_engine.error as error:
        return Result(stderr=f"grep: Invalid regular expression: {error}\n", status=2)
    sources, errors = _grep_sources(shell, operands, stdin, recursive=bool(flags & {"r", "R"}))
    try:
        out = _grep_lines(shell, regex, sources, flags, _regex_deadline(shell))
    except TimeoutError:  # the regex engine's own timeout
        raise CommandLimit(REGEX_LIMIT) from None
    status = 2 if errors else (0 if out else 1)
    return Result("".join(out), "".join(errors), status)


def _grep_lines(
    shell: Shell, regex: regex_engine.Pattern, sources, flags: set[str], deadline: float
) -> list[str]:
    out = []
    show_name = len(sources) > 1 or bool(flags & {"r", "R"})
    for name, text in sources:
        for number, line in enumerate(lines_of(text), 1):
            if bool(regex.search(line, timeout=_time_left(deadline))) == ("v" not in flags):
                if "l" in flags:
                    out.append(_charged(shell, f"{name}\n"))
                    break
                prefix = (f"{name}:" if show_name else "") + (f"{number}:" if "n" in flags else "")
                shell.budget.charge(len(prefix) + len(line) + 1)
                out.append(prefix + line + "\n")
    return out


def _grep_sources(shell: Shell, operands: list[str], stdin: str | None, recursive: bool):
    if not operands:
        return (
            ([("(standard input)", stdin or "")], [])
            if not recursive
            else _grep_sources(shell, ["."], stdin, True)
        )
    sources, errors = [], []
    for operand in operands:
        shell.budget.check_time()
        path = shell.path(operand)
        if shell.fs.is_dir(path):
            if not recursive:
                errors.append(f"grep: {operand}: Is a directory\n")
                continue
            for child in shell.fs.walk(path):
                shell.budget.check_time()
                if shell.fs.is_file(child):
                    sources.append(
                        (posixpath.join(operand, posixpath.relpath(child, path)), shell.fs.read(child))
                    )
        elif shell.fs.is_file(path):
            sources.append((operand, shell.fs.read(path)))
        else:
            errors.append(f"grep: {operand}: No such file or directory\n")
    return sources, errors


def _bre_to_python(pattern: str) -> str:
    """grep's basic regex: \\( \\) \\| \\+ \\? are operators, bare ( ) | + ? are literals."""
    out, i = [], 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            out.append(nxt if nxt in "()|+?{}" else "\\" + nxt)
            i += 2
            continue
        out.append("\\" + char if char in "()|+?{}" else char)
        i += 1
    return "".join(out)


def _after_lines(shell: Shell, text: str, count: int) -> int:
    """Index just past the first ``count`` lines of ``text`` (its length when it has fewer)."""
    end = 0
    for _ in range(count):
        shell.budget.check_time()
        newline = text.find("\n", end)
        if newline < 0:
            return len(text)
        end = newline + 1
    return end


def _last_lines_start(shell: Shell, text: str, count: int) -> int:
    """Index where the last ``count`` lines of ``text`` begin (a final newline ends a line, starts none)."""
    if count == 0:
        return len(text)
    end = len(text) - 1 if text.endswith("\n") else len(text)
    for _ in range(count):
        shell.budget.check_time()
        newline = text.rfind("\n", 0, end)
        if newline < 0:
            return 0
        end = newline
    return end + 1


def _head_tail(shell: Shell, args: list[str], stdin: str | None, name: str) -> Result:
    args = [f"-n{a[1:]}" if re.fullmatch(r"-\d+", a) else a for a in args]
    _, values, operands = split_flags(args, valued="nc")
    count_text = values.get("n", "10")
    from_start = name == "tail" and count_text.startswith("+")
    try:
        count = int(count_text.lstrip("+-"))
    except ValueError:
        return Result(stderr=f"{name}: invalid number of lines: '{count_text}'\n", status=1)
    texts, errors = _read_inputs(shell, operands, stdin, name)
    out = []
    for text in texts:
        if name == "head":
            start, end = 0, _after_lines(shell, text, count)
        elif from_start:
            start, end = _after_lines(shell, text, max(count - 1, 0)), len(text)
        else:
            start, end = _last_lines_start(shell, text, count), len(text)
        shell.budget.charge(end - start)
        out.append(text[start:end])
    return Result("".join(out), "".join(errors), 1 if errors else 0)


def cmd_head(shell: Shell, args: list[str], stdin: str | None) -> Result:
    return _head_tail(shell, args, stdin, "head")


def cmd_tail(shell: Shell, args: list[str], stdin: str | None) -> Result:
    return _head_tail(shell, args, stdin, "tail")


def _each_operand(
    shell: Shell, operands: list[str], act: Callable[[str, str], str | None], cannot: str | None = None
) -> Result:
    """Run ``act(operand, path)`` on each operand in turn, as coreutils does: a failing operand's message
    goes to stderr and the rest still run; the status is 1 when any failed. The message is what ``act``
    returns or, where ``act`` raises FSError and ``cannot`` is given, ``{cannot} '{operand}': {error}``."""
    errors = []
    for operand in operands:
        shell.budget.check_time()
        try:
            problem = act(operand, shell.path(operand))
        except FSError as error:
            if cannot is None:
                raise
            problem = f"{cannot} '{operand}': {error}"
        if problem:
            errors.append(problem + "\n")
    return Result(stderr="".join(errors), status=1 if errors else 0)


def cmd_rm(shell: Shell, args: list[str], stdin: str | None) -> Result:
    flags, _, operands = split_flags(args)

    def remove(operand: str, path: str) -> str | None:
        if shell.fs.is_dir(path) and not flags & {"r", "R"}:
            return f"rm: cannot remove '{operand}': Is a directory"
        if not shell.fs.exists(path):
            return None if "f" in flags else f"rm: cannot remove '{operand}': No such file or directory"
        shell.fs.remove(path, recursive=True)
        return None

    return _each_operand(shell, operands, remove)


def cmd_mkdir(shell: Shell, args: list[str], stdin: str | None) -> Result:
    flags, _, operands = split_flags(args)

    def make(operand: str, path: str) -> str | None:
        if shell.fs.exists(path):
            return None if "p" in flags else f"mkdir: cannot create directory '{operand}': File exists"
        shell.fs.mkdir(path, parents="p" in flags)
        return None

    return _each_operand(shell, operands, make, cannot="mkdir: cannot create directory")


def cmd_touch(shell: Shell, args: list[str], stdin: str | None) -> Result:
    def touch(operand: str, path: str) -> None:
        if not shell.fs.exists(path):
            shell.fs.write(path, "")

    return _each_operand(shell, split_flags(args)[2], touch, cannot="touch: cannot touch")


def _copy_or_move(shell: Shell, args: list[str], name: str) -> Result:
    flags, _, operands = split_flags(args)
    if len(operands) < 2:
        raise UsageError("missing destination file operand")
    *sources, destination = operands
    target = shell.path(destination)

    def copy(source: str, src: str) -> str | None:
        dst = posixpath.join(target, posixpath.basename(src)) if shell.fs.is_dir(target) else target
        problem = _copy_problem(shell.fs, src, dst, name, recursive=bool(flags & {"r", "R"}))
        if problem:
            return f"{name}: {problem.format(source=source, destination=destination)}"
        try:
            _copy_tree(shell, src, dst)
        except FSError as error:
            return f"{name}: cannot create '{destination}': {error}"
        if name == "mv":
            shell.fs.remove(src, recursive=True)
        return None

    return _each_operand(shell, sources, copy)


def _copy_problem(fs: VirtualFS, src: str, dst: str, name: str, recursive: bool) -> str | None:
    """Why ``src`` cannot be copied or moved to ``dst`` (coreutils' wording, to be formatted), or None."""
    if not fs.exists(src):
        return "cannot stat '{source}': No such file or directory"
    if name == "cp" and fs.is_dir(src) and not recursive:
        return "-r not specified; omitting directory '{source}'"
    if fs.is_dir(src) and (dst == src or dst.startswith(src.rstrip("/") + "/")):
        return "cannot copy or move a directory, '{source}', into itself, '{destination}'"
    return None


def _copy_tree(shell: Shell, src: str, dst: str) -> None:
    fs = shell.fs
    if fs.is_file(src):
        fs.write(dst, fs.read(src))
        return
    for child in fs.walk(src):
        shell.budget.check_time()
        new = dst + child[len(src) :]
        if fs.is_dir(child):
            if not fs.is_dir(new):
                fs.mkdir(new, parents=True)
        else:
            fs.write(new, fs.read(child))


def cmd_cp(shell: Shell, args: list[str], stdin: str | None) -> Result:
    return _copy_or_move(shell, args, "cp")


def cmd_mv(shell: Shell, args: list[str], stdin: str | None) -> Result:
    return _copy_or_move(shell, args, "mv")


WORD = re.compile(r"\S+")


def cmd_wc(shell: Shell, args: list[str], stdin: str | None) -> Result:
    flags, _, operands = split_flags(args)
    texts, errors = _read_inputs(shell, operands, stdin, "wc")
    wanted = [f for f in "lwc" if f in flags] or ["l", "w", "c"]
    out = []
    for name, text in zip(operands or [""], texts):
        shell.budget.check_time()
        # subn counts the words without holding a list of them, as str.split would
        counts = {"l": text.count("\n"), "w": WORD.subn("", text)[1], "c": utf8_size(text)}
        out.append(" ".join(str(counts[f]) for f in wanted) + (f" {name}" if name else "") + "\n")
    return Result("".join(out), "".join(errors), 1 if errors else 0)


def cmd_find(shell: Shell, args: list[str], stdin: str | None) -> Result:
    roots = []
    while args and not args[0].startswith("-"):
        roots.append(args.pop(0))
    tests = _find_tests(shell, args)
    out, errors = [], []
    for root in roots or ["."]:
        shell.budget.check_time()
        path = shell.path(root)
        if not shell.fs.exists(path):
            errors.append(f"find: '{root}': No such file or directory\n")
            continue
        for child in shell.fs.walk(path) if shell.fs.is_dir(path) else [path]:
            if all(test(child) for test in tests):
                shown = root if child == path else posixpath.join(root, posixpath.relpath(child, path))
                out.append(_charged(shell, shown + "\n"))
    return Result("".join(out), "".join(errors), 1 if errors else 0)


def _find_tests(shell: Shell, args: list[str]) -> list[Callable[[str], bool]]:
    tests: list[Callable[[str], bool]] = []
    while args:
        option = args.pop(0)
        if option in ("-name", "-iname", "-type") and not args:
            raise UsageError(f"missing argument to `{option}'")
        if option == "-name":
            pattern = args.pop(0)
            tests.append(lambda p, pat=pattern: fnmatch.fnmatchcase(posixpath.basename(p), pat))
        elif option == "-iname":
            pattern = args.pop(0).lower()
            tests.append(lambda p, pat=pattern: fnmatch.fnmatchcase(posixpath.basename(p).lower(), pat))
        elif option == "-type":
            kind = args.pop(0)
            tests.append(lambda p, k=kind: shell.fs.is_dir(p) if k == "d" else shell.fs.is_file(p))
        else:
            raise UsageError(f"unknown predicate `{option}'")
    return tests


def cmd_sed(shell: Shell, args: list[str], stdin: str | None) -> Result:
    flags, values, operands = split_flags(args, valued="e")
    scripts = [values["e"]] if "e" in values else operands[:1]
    files = operands if "e" in values else operands[1:]
    if not scripts:
        raise UsageError("no script specified")
    substitutions = [_parse_substitution(script) for script in scripts[0].split(";") if script.strip()]
    texts, errors = _read_inputs(shell, files, stdin, "sed")
    deadline = _regex_deadline(shell)
    try:
        edited = [_apply(shell, substitutions, text, deadline) for text in texts]
    except TimeoutError:  # the regex engine's own timeout
        raise CommandLimit(REGEX_LIMIT) from None
    if "i" in flags:
        for operand, text in zip([f for f in files if shell.fs.is_file(shell.path(f))], edited):
            shell.fs.write(shell.path(operand), text)
        return Result(stderr="".join(errors), status=1 if errors else 0)
    return Result("".join(edited), "".join(errors), 1 if errors else 0)


def _parse_substitution(script: str) -> tuple[regex_engine.Pattern, str, bool]:
    script = script.strip()
    if len(script) < 2 or script[0] != "s":
        raise UsageError(f"-e expression #1, char 1: unknown command: `{script[:1]}'")
    delimiter = script[1]
    parts = re.split(r"(?<!\\)" + re.escape(delimiter), script[2:])
    if len(parts) != 3:
        raise UsageError("-e expression #1: unterminated `s' command")
    pattern, replacement, options = parts
    try:
        regex = regex_engine.compile(
            _bre_to_python(pattern.replace("\\" + delimiter, delimiter)),
            regex_engine.IGNORECASE if "I" in options else 0,
        )
    except regex_engine.error as error:
        raise UsageError(f"-e expression #1: {error}") from error
    replacement = re.sub(r"(?<!\\)&", r"\\g<0>", replacement.replace("\\" + delimiter, delimiter))
    return regex, replacement, "g" in options


def _apply(
    shell: Shell, substitutions: list[tuple[regex_engine.Pattern, str, bool]], text: str, deadline: float
) -> str:
    """The script applied line by line; every output line is charged before the result is joined."""
    out = []
    for line in lines_of(text, keepends=True):
        for regex, template, everywhere in substitutions:
            line = _sub_line(shell, regex, template, everywhere, line, deadline)
        shell.budget.charge(len(line))
        out.append(line)
    return "".join(out)


def _sub_line(
    shell: Shell, regex: regex_engine.Pattern, template: str, everywhere: bool, line: str, deadline: float
) -> str:
    body, newline = (line[:-1], "\n") if line.endswith("\n") else (line, "")
    replacement: str | Callable[[regex_engine.Match], str] = template
    if _largest_result(len(body), template, everywhere) > shell.budget.chars_left:
        # it could outgrow the budget (`s/a/&&&&&&&&/g`): charge each replacement as it is made
        def replacement(match: regex_engine.Match) -> str:
            return _charged(shell, match.expand(template))

    try:
        return (
            regex.sub(replacement, body, count=0 if everywhere else 1, timeout=_time_left(deadline)) + newline
        )
    except (regex_engine.error, IndexError) as error:
        raise UsageError(f"-e expression #1: invalid reference in replacement: {error}") from error


GROUP_REFERENCE = re.compile(r"\\g<[^>]*>|\\[0-9]")


def _largest_result(size: int, template: str, everywhere: bool) -> int:
    """An upper bound on the length of a substitution's result on a line of ``size`` characters.

    At most ``size + 1`` matches (one without ``g``), each replaced by the template's text plus, for every
    group reference in it, at most the whole line.
    """
    matches = size + 1 if everywhere else 1
    return size + matches * (len(template) + len(GROUP_REFERENCE.findall(template)) * size)


COMMANDS: dict[str, Callable[[Shell, list[str], str | None], Result]] = {
    "cd": cmd_cd,
    "pwd": cmd_pwd,
    "ls": cmd_ls,
    "cat": cmd_cat,
    "echo": cmd_echo,
    "grep": cmd_grep,
    "head": cmd_head,
    "tail": cmd_tail,
    "rm": cmd_rm,
    "mkdir": cmd_mkdir,
    "touch": cmd_touch,
    "cp": cmd_cp,
    "mv": cmd_mv,
    "wc": cmd_wc,
    "find": cmd_find,
    "sed": cmd_sed,
}
