"""The virtual shell's commands: name → function(ctx, args, stdin) -> Result, one module per kind."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from rmguard.tamper.sandbox.base import Result
from rmguard.tamper.sandbox.commands.files import cmd_cp, cmd_mkdir, cmd_mv, cmd_rm, cmd_touch
from rmguard.tamper.sandbox.commands.navigate import cmd_cd, cmd_find, cmd_ls, cmd_pwd
from rmguard.tamper.sandbox.commands.patterns import cmd_grep, cmd_sed
from rmguard.tamper.sandbox.commands.python import cmd_python, cmd_python3
from rmguard.tamper.sandbox.commands.text import cmd_cat, cmd_echo, cmd_head, cmd_tail, cmd_wc

if TYPE_CHECKING:
    from rmguard.tamper.sandbox.shell import Context

Command = Callable[["Context", list[str], str | None], Result]

COMMANDS: dict[str, Command] = {
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
    "python": cmd_python,
    "python3": cmd_python3,
}
