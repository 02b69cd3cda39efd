"""What the commands share: option parsing, reading inputs, per-operand errors, charged output."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from rmguard.tamper.sandbox.base import Result
from rmguard.tamper.sandbox.vfs import FSError

if TYPE_CHECKING:
    from rmguard.tamper.sandbox.shell import Context


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


def read_inputs(
    ctx: Context, operands: list[str], stdin: str | None, name: str
) -> tuple[list[str], list[str]]:
    """(texts, errors) for commands that read files or stdin."""
    if not operands:
        return [stdin or ""], []
    texts, errors = [], []
    for operand in operands:
        ctx.budget.check_time()
        try:
            texts.append(ctx.fs.read(ctx.path(operand)))
        except FSError as error:
            errors.append(f"{name}: {operand}: {error}\n")
    return texts, errors


def each_operand(
    ctx: Context, operands: list[str], act: Callable[[str, str], str | None], cannot: str | None = None
) -> Result:
    """Run ``act(operand, path)`` on each operand in turn, as coreutils does: a failing operand's message
    goes to stderr and the rest still run; the status is 1 when any failed. The message is what ``act``
    returns or, where ``act`` raises FSError and ``cannot`` is given, ``{cannot} '{operand}': {error}``."""
    errors = []
    for operand in operands:
        ctx.budget.check_time()
        try:
            problem = act(operand, ctx.path(operand))
        except FSError as error:
            if cannot is None:
                raise
            problem = f"{cannot} '{operand}': {error}"
        if problem:
            errors.append(problem + "\n")
    return Result(stderr="".join(errors), status=1 if errors else 0)


def charged(ctx: Context, text: str) -> str:
    ctx.budget.charge(len(text))
    return text


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
