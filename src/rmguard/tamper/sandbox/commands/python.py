"""``python``: the model runs Python itself, as it could in the paper's sandbox, in the process jail.

The job sees the episode's files at the home folder, under the jail's limits (those of the graders' jobs);
it starts only while the command line has time left, its time and output count toward the line's budgets
as any command's do (so a line can overrun its clock by one job at most), and how it ended is recorded. Files the
job writes stay in the jail, which vanishes after it: only the shell's own commands change the episode's
files. Without a jail in the run (an environment whose grading runs no model code, on a host without
one) ``python`` is not installed, as in a sandbox without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rmguard.tamper.sandbox.base import Result
from rmguard.tamper.sandbox.commands.common import UsageError
from rmguard.tamper.sandbox.python_source import PythonUsage, python_source

if TYPE_CHECKING:
    from rmguard.tamper.sandbox.shell import Context


def cmd_python(ctx: Context, args: list[str], stdin: str | None, name: str = "python") -> Result:
    if not ctx.has_python:
        return Result(stderr=f"bash: {name}: command not found\n", status=127)
    try:
        code = python_source(args, stdin)
    except PythonUsage as error:
        raise UsageError(str(error)) from None
    run = ctx.run_python(code)
    # the jail's clock bounds the job; its time and output count toward the line's budgets like any command's
    ctx.budget.charge(len(run.stdout) + len(run.stderr))
    status = run.exit_code if run.exit_code is not None else 128 + (run.signal or 9)
    return Result(run.stdout, run.stderr, status)


def cmd_python3(ctx: Context, args: list[str], stdin: str | None) -> Result:
    return cmd_python(ctx, args, stdin, "python3")
