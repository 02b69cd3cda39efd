"""grep and sed: model-written regular expressions under a time budget.

Each grep/sed's patterns run under a time budget: the `regex` engine stops a catastrophically backtracking
match (Python's `re` cannot be interrupted) and the command fails instead of the grader hanging.
"""

from __future__ import annotations

import posixpath
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import regex as regex_engine

from rmguard.tamper.sandbox.base import Result
from rmguard.tamper.sandbox.budget import CommandLimit
from rmguard.tamper.sandbox.commands.common import UsageError, charged, lines_of, read_inputs, split_flags

if TYPE_CHECKING:
    from rmguard.tamper.sandbox.shell import Context


# Model-written patterns run under a time budget per grep/sed: the `regex` engine stops a catastrophically
# backtracking match (Python's `re` cannot be interrupted) and the command fails instead of the grader hanging.
# The engine counts its timeout in CPU time, so on a loaded machine the wall clock can run past it.
REGEX_BUDGET_S = 1.0


REGEX_LIMIT = "the pattern exceeded its time budget"


def _regex_deadline(ctx: Context) -> float:
    """This grep/sed's deadline: its own regex budget, never past the command line's."""
    return min(time.monotonic() + REGEX_BUDGET_S, ctx.budget.deadline)


def _time_left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise CommandLimit(REGEX_LIMIT)
    return left


def cmd_grep(ctx: Context, args: list[str], stdin: str | None) -> Result:
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
    sources, errors = _grep_sources(ctx, operands, stdin, recursive=bool(flags & {"r", "R"}))
    try:
        out = _grep_lines(ctx, regex, sources, flags, _regex_deadline(ctx))
    except TimeoutError:  # the regex engine's own timeout
        raise CommandLimit(REGEX_LIMIT) from None
    status = 2 if errors else (0 if out else 1)
    return Result("".join(out), "".join(errors), status)


def _grep_lines(
    ctx: Context, regex: regex_engine.Pattern, sources, flags: set[str], deadline: float
) -> list[str]:
    out = []
    show_name = len(sources) > 1 or bool(flags & {"r", "R"})
    for name, text in sources:
        for number, line in enumerate(lines_of(text), 1):
            if bool(regex.search(line, timeout=_time_left(deadline))) == ("v" not in flags):
                if "l" in flags:
                    out.append(charged(ctx, f"{name}\n"))
                    break
                prefix = (f"{name}:" if show_name else "") + (f"{number}:" if "n" in flags else "")
                ctx.budget.charge(len(prefix) + len(line) + 1)
                out.append(prefix + line + "\n")
    return out


def _grep_sources(ctx: Context, operands: list[str], stdin: str | None, recursive: bool):
    if not operands:
        return (
            ([("(standard input)", stdin or "")], [])
            if not recursive
            else _grep_sources(ctx, ["."], stdin, True)
        )
    sources, errors = [], []
    for operand in operands:
        ctx.budget.check_time()
        path = ctx.path(operand)
        if ctx.fs.is_dir(path):
            if not recursive:
                errors.append(f"grep: {operand}: Is a directory\n")
                continue
            for child in ctx.fs.walk(path):
                ctx.budget.check_time()
                if ctx.fs.is_file(child):
                    sources.append(
                        (posixpath.join(operand, posixpath.relpath(child, path)), ctx.fs.read(child))
                    )
        elif ctx.fs.is_file(path):
            sources.append((operand, ctx.fs.read(path)))
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


def cmd_sed(ctx: Context, args: list[str], stdin: str | None) -> Result:
    flags, values, operands = split_flags(args, valued="e")
    scripts = [values["e"]] if "e" in values else operands[:1]
    files = operands if "e" in values else operands[1:]
    if not scripts:
        raise UsageError("no script specified")
    substitutions = [_parse_substitution(script) for script in scripts[0].split(";") if script.strip()]
    texts, errors = read_inputs(ctx, files, stdin, "sed")
    deadline = _regex_deadline(ctx)
    try:
        edited = [_apply(ctx, substitutions, text, deadline) for text in texts]
    except TimeoutError:  # the regex engine's own timeout
        raise CommandLimit(REGEX_LIMIT) from None
    if "i" in flags:
        for operand, text in zip([f for f in files if ctx.fs.is_file(ctx.path(f))], edited):
            ctx.fs.write(ctx.path(operand), text)
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
    ctx: Context, substitutions: list[tuple[regex_engine.Pattern, str, bool]], text: str, deadline: float
) -> str:
    """The script applied line by line; every output line is charged before the result is joined."""
    out = []
    for line in lines_of(text, keepends=True):
        for regex, template, everywhere in substitutions:
            line = _sub_line(ctx, regex, template, everywhere, line, deadline)
        ctx.budget.charge(len(line))
        out.append(line)
    return "".join(out)


def _sub_line(
    ctx: Context, regex: regex_engine.Pattern, template: str, everywhere: bool, line: str, deadline: float
) -> str:
    body, newline = (line[:-1], "\n") if line.endswith("\n") else (line, "")
    replacement: str | Callable[[regex_engine.Match], str] = template
    if _largest_result(len(body), template, everywhere) > ctx.budget.chars_left:
        # it could outgrow the budget (`s/a/&&&&&&&&/g`): charge each replacement as it is made
        def replacement(match: regex_engine.Match) -> str:
            return charged(ctx, match.expand(template))

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
