"""A small bash look-alike that runs commands against a :class:`VirtualFS`, never the host.

Supported: ``cmd; cmd``, ``&&``, ``||``, pipes, ``>``, ``>>``, ``2>``, ``2>&1``, single and double quotes,
backslash escapes, ``*``/``?`` globs, and the commands in :data:`COMMANDS`. Anything else answers like
bash does for a missing program, so a model sees a believable error.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import regex as regex_engine

from rmguard.tamper.vfs import FSError, VirtualFS

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

    def __init__(self, fs: VirtualFS, cwd: str = "/root", max_output: int = 20_000):
        self.fs, self.cwd, self.max_output = fs, cwd, max_output

    def run(self, line: str) -> Result:
        try:
            sequence = parse(line)
        except ShellSyntaxError as error:
            return Result(stderr=f"bash: {error}\n", status=2)
        out, err, status = [], [], 0
        for pipeline, connector in sequence:
            if (connector == "&&" and status != 0) or (connector == "||" and status == 0):
                continue
            result = self._pipeline(pipeline)
            out.append(result.stdout)
            err.append(result.stderr)
            status = result.status
        return Result(self._cap("".join(out)), self._cap("".join(err)), status)

    def _cap(self, text: str) -> str:
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
        argv = self._expand(command.argv)
        name, args = argv[0], argv[1:]
        handler = COMMANDS.get(name)
        if handler is None:
            result = Result(stderr=f"bash: {name}: command not found\n", status=127)
        else:
            try:
                result = handler(self, args, stdin)
            except FSError as error:
                result = Result(stderr=f"{name}: {error}\n", status=1)
            except UsageError as error:
                result = Result(stderr=f"{name}: {error}\n", status=2)
        if command.stderr_to_stdout:
            result = Result(result.stdout + result.stderr, "", result.status)
        if command.stderr_to is not None:
            redirected = self._redirect(command.stderr_to, result.stderr, append=False)
            result = Result(result.stdout, redirected.stderr, result.status or redirected.status)
        if command.stdout_to is not None:
            redirected = self._redirect(command.stdout_to[0], result.stdout, command.stdout_to[1])
            result = Result("", result.stderr + redirected.stderr, redirected.status or result.status)
        return result

    def _redirect(self, target: str, text: str, append: bool) -> Result:
        if target == "/dev/null":
            return Result()
        try:
            self.fs.write(self.path(target), text, append=append)
        except FSError as error:
            return Result(stderr=f"bash: {target}: {error}\n", status=1)
        return Result()

    def _expand(self, words: list[Word]) -> list[str]:
        argv = []
        for word in words:
            matches = self._glob(word.text) if word.glob else []
            argv.extend(matches or [word.text])
        return argv

    def _glob(self, pattern: str) -> list[str]:
        absolute = self.path(pattern)
        directory = posixpath.dirname(absolute)
        if not self.fs.is_dir(directory):
            return []
        base = posixpath.basename(absolute)
        names = [
            n for n in self.fs.listdir(directory) if fnmatch.fnmatchcase(n, base) and not n.startswith(".")
        ]
        prefix = posixpath.dirname(pattern)
        return [posixpath.join(prefix, n) if prefix else n for n in names]

    def path(self, path: str) -> str:
        return self.fs.resolve(self.cwd, path)


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
        path = shell.path(target)
        if shell.fs.is_file(path):
            out.append(_ls_line(shell, path, target, "l" in flags))
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
        out.extend(_ls_line(shell, posixpath.join(path, n), n, "l" in flags) for n in names)
    return Result("".join(out), "".join(err), 2 if err else 0)


def _ls_line(shell: Shell, path: str, name: str, long: bool) -> str:
    if not long:
        return name + "\n"
    path = posixpath.normpath(path)
    if shell.fs.is_dir(path):
        return f"drwxr-xr-x 2 root root 4096 Jan  1 00:00 {name}\n"
    size = len(shell.fs.files.get(path, "").encode())
    return f"-rw-r--r-- 1 root root {size:>5} Jan  1 00:00 {name}\n"


def cmd_cat(shell: Shell, args: list[str], stdin: str | None) -> Result:
    _, _, operands = split_flags(args)
    texts, errors = _read_inputs(shell, operands, stdin, "cat")
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
    return Result(text + ("\n" if newline else ""))


# Model-written patterns run under a time budget per command: the `regex` engine stops a catastrophically
# backtracking match (Python's `re` cannot be interrupted) and the command fails instead of the grader hanging.
REGEX_BUDGET_S = 1.0
REGEX_LIMIT = "the pattern exceeded its time budget"


def _regex_deadline() -> float:
    return time.monotonic() + REGEX_BUDGET_S


def _time_left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError(REGEX_LIMIT)
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
        out = _grep_lines(regex, sources, flags, _regex_deadline())
    except TimeoutError:
        return Result(stderr=f"grep: {REGEX_LIMIT}\n", status=2)
    status = 2 if errors else (0 if out else 1)
    return Result("".join(out), "".join(errors), status)


def _grep_lines(regex: regex_engine.Pattern, sources, flags: set[str], deadline: float) -> list[str]:
    out = []
    show_name = len(sources) > 1 or bool(flags & {"r", "R"})
    for name, text in sources:
        for number, line in enumerate(text.splitlines(), 1):
            if bool(regex.search(line, timeout=_time_left(deadline))) == ("v" not in flags):
                if "l" in flags:
                    out.append(f"{name}\n")
                    break
                prefix = (f"{name}:" if show_name else "") + (f"{number}:" if "n" in flags else "")
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
        path = shell.path(operand)
        if shell.fs.is_dir(path):
            if not recursive:
                errors.append(f"grep: {operand}: Is a directory\n")
                continue
            for child in shell.fs.walk(path):
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
        lines = text.splitlines(keepends=True)
        if name == "head":
            picked = lines[:count]
        else:
            picked = lines[count - 1 :] if from_start else (lines[-count:] if count else [])
        out.append("".join(picked))
    return Result("".join(out), "".join(errors), 1 if errors else 0)


def cmd_head(shell: Shell, args: list[str], stdin: str | None) -> Result:
    return _head_tail(shell, args, stdin, "head")


def cmd_tail(shell: Shell, args: list[str], stdin: str | None) -> Result:
    return _head_tail(shell, args, stdin, "tail")


def cmd_rm(shell: Shell, args: list[str], stdin: str | None) -> Result:
    flags, _, operands = split_flags(args)
    errors = []
    for operand in operands:
        path = shell.path(operand)
        if shell.fs.is_dir(path) and not flags & {"r", "R"}:
            errors.append(f"rm: cannot remove '{operand}': Is a directory\n")
            continue
        if not shell.fs.exists(path):
            if "f" not in flags:
                errors.append(f"rm: cannot remove '{operand}': No such file or directory\n")
            continue
        shell.fs.remove(path, recursive=True)
    return Result(stderr="".join(errors), status=1 if errors else 0)


def cmd_mkdir(shell: Shell, args: list[str], stdin: str | None) -> Result:
    flags, _, operands = split_flags(args)
    errors = []
    for operand in operands:
        path = shell.path(operand)
        if shell.fs.exists(path):
            if "p" not in flags:
                errors.append(f"mkdir: cannot create directory '{operand}': File exists\n")
            continue
        try:
            shell.fs.mkdir(path, parents="p" in flags)
        except FSError as error:
            errors.append(f"mkdir: cannot create directory '{operand}': {error}\n")
    return Result(stderr="".join(errors), status=1 if errors else 0)


def cmd_touch(shell: Shell, args: list[str], stdin: str | None) -> Result:
    _, _, operands = split_flags(args)
    for operand in operands:
        path = shell.path(operand)
        if not shell.fs.exists(path):
            shell.fs.write(path, "")
    return Result()


def _copy_or_move(shell: Shell, args: list[str], name: str) -> Result:
    flags, _, operands = split_flags(args)
    if len(operands) < 2:
        raise UsageError("missing destination file operand")
    *sources, destination = operands
    target = shell.path(destination)
    errors = []
    for source in sources:
        src = shell.path(source)
        if not shell.fs.exists(src):
            errors.append(f"{name}: cannot stat '{source}': No such file or directory\n")
            continue
        if name == "cp" and shell.fs.is_dir(src) and not flags & {"r", "R"}:
            errors.append(f"cp: -r not specified; omitting directory '{source}'\n")
            continue
        dst = posixpath.join(target, posixpath.basename(src)) if shell.fs.is_dir(target) else target
        _copy_tree(shell.fs, src, dst)
        if name == "mv":
            shell.fs.remove(src, recursive=True)
    return Result(stderr="".join(errors), status=1 if errors else 0)


def _copy_tree(fs: VirtualFS, src: str, dst: str) -> None:
    if fs.is_file(src):
        fs.write(dst, fs.read(src))
        return
    for child in fs.walk(src):
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


def cmd_wc(shell: Shell, args: list[str], stdin: str | None) -> Result:
    flags, _, operands = split_flags(args)
    texts, errors = _read_inputs(shell, operands, stdin, "wc")
    wanted = [f for f in "lwc" if f in flags] or ["l", "w", "c"]
    out = []
    for name, text in zip(operands or [""], texts):
        counts = {"l": text.count("\n"), "w": len(text.split()), "c": len(text.encode())}
        out.append(" ".join(str(counts[f]) for f in wanted) + (f" {name}" if name else "") + "\n")
    return Result("".join(out), "".join(errors), 1 if errors else 0)


def cmd_find(shell: Shell, args: list[str], stdin: str | None) -> Result:
    roots = []
    while args and not args[0].startswith("-"):
        roots.append(args.pop(0))
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
    out, errors = [], []
    for root in roots or ["."]:
        path = shell.path(root)
        if not shell.fs.exists(path):
            errors.append(f"find: '{root}': No such file or directory\n")
            continue
        for child in shell.fs.walk(path) if shell.fs.is_dir(path) else [path]:
            if all(test(child) for test in tests):
                shown = root if child == path else posixpath.join(root, posixpath.relpath(child, path))
                out.append(shown + "\n")
    return Result("".join(out), "".join(errors), 1 if errors else 0)


def cmd_sed(shell: Shell, args: list[str], stdin: str | None) -> Result:
    flags, values, operands = split_flags(args, valued="e")
    scripts = [values["e"]] if "e" in values else operands[:1]
    files = operands if "e" in values else operands[1:]
    if not scripts:
        raise UsageError("no script specified")
    substitutions = [_parse_substitution(script) for script in scripts[0].split(";") if script.strip()]
    texts, errors = _read_inputs(shell, files, stdin, "sed")
    deadline = _regex_deadline()
    try:
        edited = [_apply(substitutions, text, deadline) for text in texts]
    except TimeoutError:
        return Result(stderr=f"sed: {REGEX_LIMIT}\n", status=4)
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


def _apply(substitutions: list[tuple[regex_engine.Pattern, str, bool]], text: str, deadline: float) -> str:
    lines = text.splitlines(keepends=True)
    for regex, replacement, everywhere in substitutions:
        lines = [_sub_line(regex, replacement, everywhere, line, deadline) for line in lines]
    return "".join(lines)


def _sub_line(
    regex: regex_engine.Pattern, replacement: str, everywhere: bool, line: str, deadline: float
) -> str:
    body, newline = (line[:-1], "\n") if line.endswith("\n") else (line, "")
    try:
        return (
            regex.sub(replacement, body, count=0 if everywhere else 1, timeout=_time_left(deadline)) + newline
        )
    except (regex_engine.error, IndexError) as error:
        raise UsageError(f"-e expression #1: invalid reference in replacement: {error}") from error


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
