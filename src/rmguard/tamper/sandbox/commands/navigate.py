"""cd, pwd, ls and find."""

from __future__ import annotations

import fnmatch
import posixpath
from collections.abc import Callable
from typing import TYPE_CHECKING

from rmguard.tamper.sandbox.base import Result
from rmguard.tamper.sandbox.commands.common import UsageError, charged, split_flags
from rmguard.tamper.sandbox.vfs import utf8_size

if TYPE_CHECKING:
    from rmguard.tamper.sandbox.shell import Context


def cmd_cd(ctx: Context, args: list[str], stdin: str | None) -> Result:
    target = ctx.path(args[0] if args else "/root")
    if not ctx.fs.is_dir(target):
        reason = "Not a directory" if ctx.fs.is_file(target) else "No such file or directory"
        return Result(stderr=f"bash: cd: {args[0]}: {reason}\n", status=1)
    ctx.chdir(target)
    return Result()


def cmd_pwd(ctx: Context, args: list[str], stdin: str | None) -> Result:
    return Result(ctx.cwd + "\n")


def cmd_ls(ctx: Context, args: list[str], stdin: str | None) -> Result:
    flags, _, operands = split_flags(args)
    out, err = [], []
    targets = operands or ["."]
    for target in targets:
        ctx.budget.check_time()
        path = ctx.path(target)
        if ctx.fs.is_file(path):
            out.append(charged(ctx, _ls_line(ctx, path, target, "l" in flags)))
            continue
        if not ctx.fs.is_dir(path):
            err.append(f"ls: cannot access '{target}': No such file or directory\n")
            continue
        names = ctx.fs.listdir(path)
        names = [".", "..", *names] if "a" in flags else [n for n in names if not n.startswith(".")]
        if len(targets) > 1:
            out.append(f"{target}:\n")
        if "l" in flags:
            out.append(f"total {len(names) * 4}\n")
        out.extend(charged(ctx, _ls_line(ctx, posixpath.join(path, n), n, "l" in flags)) for n in names)
    return Result("".join(out), "".join(err), 2 if err else 0)


def _ls_line(ctx: Context, path: str, name: str, long: bool) -> str:
    if not long:
        return name + "\n"
    path = posixpath.normpath(path)
    if ctx.fs.is_dir(path):
        return f"drwxr-xr-x 2 root root 4096 Jan  1 00:00 {name}\n"
    size = utf8_size(ctx.fs.files.get(path, ""))
    return f"-rw-r--r-- 1 root root {size:>5} Jan  1 00:00 {name}\n"


def cmd_find(ctx: Context, args: list[str], stdin: str | None) -> Result:
    roots = []
    while args and not args[0].startswith("-"):
        roots.append(args.pop(0))
    tests = _find_tests(ctx, args)
    out, errors = [], []
    for root in roots or ["."]:
        ctx.budget.check_time()
        path = ctx.path(root)
        if not ctx.fs.exists(path):
            errors.append(f"find: '{root}': No such file or directory\n")
            continue
        for child in ctx.fs.walk(path) if ctx.fs.is_dir(path) else [path]:
            if all(test(child) for test in tests):
                shown = root if child == path else posixpath.join(root, posixpath.relpath(child, path))
                out.append(charged(ctx, shown + "\n"))
    return Result("".join(out), "".join(errors), 1 if errors else 0)


def _find_tests(ctx: Context, args: list[str]) -> list[Callable[[str], bool]]:
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
            tests.append(lambda p, k=kind: ctx.fs.is_dir(p) if k == "d" else ctx.fs.is_file(p))
        else:
            raise UsageError(f"unknown predicate `{option}'")
    return tests
