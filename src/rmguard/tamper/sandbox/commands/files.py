"""rm, mkdir, touch, cp and mv."""

from __future__ import annotations

import posixpath
from typing import TYPE_CHECKING

from rmguard.tamper.sandbox.base import Result
from rmguard.tamper.sandbox.commands.common import UsageError, each_operand, split_flags
from rmguard.tamper.sandbox.vfs import FSError, VirtualFS

if TYPE_CHECKING:
    from rmguard.tamper.sandbox.shell import Context


def cmd_rm(ctx: Context, args: list[str], stdin: str | None) -> Result:
    flags, _, operands = split_flags(args)

    def remove(operand: str, path: str) -> str | None:
        if ctx.fs.is_dir(path) and not flags & {"r", "R"}:
            return f"rm: cannot remove '{operand}': Is a directory"
        if not ctx.fs.exists(path):
            return None if "f" in flags else f"rm: cannot remove '{operand}': No such file or directory"
        ctx.fs.remove(path, recursive=True)
        return None

    return each_operand(ctx, operands, remove)


def cmd_mkdir(ctx: Context, args: list[str], stdin: str | None) -> Result:
    flags, _, operands = split_flags(args)

    def make(operand: str, path: str) -> str | None:
        if ctx.fs.exists(path):
            return None if "p" in flags else f"mkdir: cannot create directory '{operand}': File exists"
        ctx.fs.mkdir(path, parents="p" in flags)
        return None

    return each_operand(ctx, operands, make, cannot="mkdir: cannot create directory")


def cmd_touch(ctx: Context, args: list[str], stdin: str | None) -> Result:
    def touch(operand: str, path: str) -> None:
        if not ctx.fs.exists(path):
            ctx.fs.write(path, "")

    return each_operand(ctx, split_flags(args)[2], touch, cannot="touch: cannot touch")


def _copy_or_move(ctx: Context, args: list[str], name: str) -> Result:
    flags, _, operands = split_flags(args)
    if len(operands) < 2:
        raise UsageError("missing destination file operand")
    *sources, destination = operands
    target = ctx.path(destination)

    def copy(source: str, src: str) -> str | None:
        dst = posixpath.join(target, posixpath.basename(src)) if ctx.fs.is_dir(target) else target
        problem = _copy_problem(ctx.fs, src, dst, name, recursive=bool(flags & {"r", "R"}))
        if problem:
            return f"{name}: {problem.format(source=source, destination=destination)}"
        try:
            _copy_tree(ctx, src, dst)
        except FSError as error:
            return f"{name}: cannot create '{destination}': {error}"
        if name == "mv":
            ctx.fs.remove(src, recursive=True)
        return None

    return each_operand(ctx, sources, copy)


def _copy_problem(fs: VirtualFS, src: str, dst: str, name: str, recursive: bool) -> str | None:
    """Why ``src`` cannot be copied or moved to ``dst`` (coreutils' wording, to be formatted), or None."""
    if not fs.exists(src):
        return "cannot stat '{source}': No such file or directory"
    if name == "cp" and fs.is_dir(src) and not recursive:
        return "-r not specified; omitting directory '{source}'"
    if fs.is_dir(src) and (dst == src or dst.startswith(src.rstrip("/") + "/")):
        return "cannot copy or move a directory, '{source}', into itself, '{destination}'"
    return None


def _copy_tree(ctx: Context, src: str, dst: str) -> None:
    fs = ctx.fs
    if fs.is_file(src):
        fs.write(dst, fs.read(src))
        return
    for child in fs.walk(src):
        ctx.budget.check_time()
        new = dst + child[len(src) :]
        if fs.is_dir(child):
            if not fs.is_dir(new):
                fs.mkdir(new, parents=True)
        else:
            fs.write(new, fs.read(child))


def cmd_cp(ctx: Context, args: list[str], stdin: str | None) -> Result:
    return _copy_or_move(ctx, args, "cp")


def cmd_mv(ctx: Context, args: list[str], stdin: str | None) -> Result:
    return _copy_or_move(ctx, args, "mv")
