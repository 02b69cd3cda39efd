"""cat, echo, head, tail and wc."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from rmguard.tamper.sandbox.base import Result
from rmguard.tamper.sandbox.commands.common import charged, read_inputs, split_flags
from rmguard.tamper.sandbox.vfs import utf8_size

if TYPE_CHECKING:
    from rmguard.tamper.sandbox.shell import Context


def cmd_cat(ctx: Context, args: list[str], stdin: str | None) -> Result:
    _, _, operands = split_flags(args)
    texts, errors = read_inputs(ctx, operands, stdin, "cat")
    for text in texts:  # charged before the join builds the output
        ctx.budget.charge(len(text))
    return Result("".join(texts), "".join(errors), 1 if errors else 0)


ECHO_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", "a": "\a", "r": "\r", "0": "\0"}


def cmd_echo(ctx: Context, args: list[str], stdin: str | None) -> Result:
    newline, escapes = True, False
    while args and re.fullmatch(r"-[neE]+", args[0]):
        newline = newline and "n" not in args[0]
        escapes = "e" in args[0]
        args = args[1:]
    text = " ".join(args)
    if escapes:
        text = re.sub(r"\\(.)", lambda m: ECHO_ESCAPES.get(m.group(1), m.group(0)), text)
    return Result(charged(ctx, text + ("\n" if newline else "")))


def _after_lines(ctx: Context, text: str, count: int) -> int:
    """Index just past the first ``count`` lines of ``text`` (its length when it has fewer)."""
    end = 0
    for _ in range(count):
        ctx.budget.check_time()
        newline = text.find("\n", end)
        if newline < 0:
            return len(text)
        end = newline + 1
    return end


def _last_lines_start(ctx: Context, text: str, count: int) -> int:
    """Index where the last ``count`` lines of ``text`` begin (a final newline ends a line, starts none)."""
    if count == 0:
        return len(text)
    end = len(text) - 1 if text.endswith("\n") else len(text)
    for _ in range(count):
        ctx.budget.check_time()
        newline = text.rfind("\n", 0, end)
        if newline < 0:
            return 0
        end = newline
    return end + 1


def _head_tail(ctx: Context, args: list[str], stdin: str | None, name: str) -> Result:
    args = [f"-n{a[1:]}" if re.fullmatch(r"-\d+", a) else a for a in args]
    _, values, operands = split_flags(args, valued="nc")
    count_text = values.get("n", "10")
    from_start = name == "tail" and count_text.startswith("+")
    try:
        count = int(count_text.lstrip("+-"))
    except ValueError:
        return Result(stderr=f"{name}: invalid number of lines: '{count_text}'\n", status=1)
    texts, errors = read_inputs(ctx, operands, stdin, name)
    out = []
    for text in texts:
        if name == "head":
            start, end = 0, _after_lines(ctx, text, count)
        elif from_start:
            start, end = _after_lines(ctx, text, max(count - 1, 0)), len(text)
        else:
            start, end = _last_lines_start(ctx, text, count), len(text)
        ctx.budget.charge(end - start)
        out.append(text[start:end])
    return Result("".join(out), "".join(errors), 1 if errors else 0)


def cmd_head(ctx: Context, args: list[str], stdin: str | None) -> Result:
    return _head_tail(ctx, args, stdin, "head")


def cmd_tail(ctx: Context, args: list[str], stdin: str | None) -> Result:
    return _head_tail(ctx, args, stdin, "tail")


WORD = re.compile(r"\S+")


def cmd_wc(ctx: Context, args: list[str], stdin: str | None) -> Result:
    flags, _, operands = split_flags(args)
    texts, errors = read_inputs(ctx, operands, stdin, "wc")
    wanted = [f for f in "lwc" if f in flags] or ["l", "w", "c"]
    out = []
    for name, text in zip(operands or [""], texts):
        ctx.budget.check_time()
        # subn counts the words without holding a list of them, as str.split would
        counts = {"l": text.count("\n"), "w": WORD.subn("", text)[1], "c": utf8_size(text)}
        out.append(" ".join(str(counts[f]) for f in wanted) + (f" {name}" if name else "") + "\n")
    return Result("".join(out), "".join(errors), 1 if errors else 0)
