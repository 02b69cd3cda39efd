"""The virtual shell's lexer and parser: a command line → pipelines of simple commands.

Supported: ``cmd; cmd``, ``&&``, ``||``, pipes, ``>``, ``>>``, ``2>``, ``2>&1``, single and double quotes,
backslash escapes, ``*``/``?`` globs and ``$?`` (the last status, unquoted or in double quotes, as bash).
"""

from __future__ import annotations

from dataclasses import dataclass, field

OPERATORS = ("&&", "||", ">>", "2>&1", "2>", ";", "|", ">", "\n")


class ShellSyntaxError(Exception):
    pass


@dataclass
class Word:
    text: str
    glob: bool = False  # contains an unquoted * or ?
    status_at: tuple[int, ...] = ()  # offsets in text where a `$?` stands, expanded when the command runs

    def expanded(self, status: int) -> str:
        """The text with each ``$?`` replaced by ``status`` (the exit status of the last pipeline)."""
        text = self.text
        for offset in reversed(self.status_at):
            text = text[:offset] + str(status) + text[offset:]
        return text


@dataclass
class SimpleCommand:
    argv: list[Word] = field(default_factory=list)
    stdout_to: tuple[str, bool] | None = None  # (path, append)
    stderr_to: str | None = None
    stderr_to_stdout: bool = False


def tokenize(line: str) -> list[Word | str]:
    """Words (:class:`Word`) and operators (plain ``str``)."""
    tokens: list[Word | str] = []
    i, current, glob, in_word, status_at = 0, [], False, False, []

    def flush() -> None:
        nonlocal current, glob, in_word, status_at
        if in_word:
            tokens.append(Word("".join(current), glob, tuple(status_at)))
        current, glob, in_word, status_at = [], False, False, []

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
        elif char == '"' or line.startswith("$?", i):
            offset = sum(map(len, current))
            text, i, inside = _double_quoted(line, i + 1) if char == '"' else ("", i + 2, [0])
            status_at.extend(offset + at for at in inside)
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


def _double_quoted(line: str, i: int) -> tuple[str, int, list[int]]:
    """The text of a double-quoted string from ``i``, the index after it, and where ``$?`` stood in it."""
    out, status_at = [], []  # one character per entry of out
    while i < len(line):
        char = line[i]
        if char == '"':
            return "".join(out), i + 1, status_at
        if line.startswith("$?", i):
            status_at.append(len(out))
            i += 2
            continue
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
