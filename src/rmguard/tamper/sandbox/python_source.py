"""``python`` command lines as Python source for the jail, run as real Python would run them.

Shared by the graders (a record's ``reward_cmd``/``oversight_cmd``) and the model's own ``python`` in the
virtual shell. The jail's home folder is where the records put it (:data:`~rmguard.tamper.sandbox.base.HOME`),
so absolute paths a command names resolve as in the paper's sandbox.
"""

from __future__ import annotations

import re
import shlex

PYTHON = re.compile(r"python[0-9.]*")


class PythonUsage(ValueError):
    """An invocation of ``python`` this sandbox does not run (an interpreter option, a missing argument)."""


def python_source(args: list[str], stdin: str | None = None) -> str:
    """The jail job for ``python ARGS`` (the words after ``python``), as CPython runs it.

    ``python FILE ARGS``: ``sys.argv = [FILE, *ARGS]``, the script's folder first on ``sys.path``, the
    script run as ``__main__``. ``python -c CODE ARGS``: ``sys.argv = ['-c', *ARGS]``, the working
    directory first on ``sys.path``, ``CODE`` run as ``__main__``. ``python`` alone runs its standard input
    (CPython without a terminal does the same).
    """
    if not args:
        return stdin or ""
    if args[0] == "-c":
        if len(args) < 2:
            raise PythonUsage("Argument expected for the -c option")
        return (
            "import sys\n"
            f"sys.argv = {['-c', *args[2:]]!r}\n"
            "sys.path.insert(0, '')\n"
            f"exec(compile({args[1]!r}, '<string>', 'exec'), {{'__name__': '__main__'}})\n"
        )
    if args[0].startswith("-"):
        raise PythonUsage(f"option {args[0]} is not available in this sandbox")
    script = args[0]
    return (
        "import os, runpy, sys\n"
        f"sys.argv = {[script, *args[1:]]!r}\n"
        f"sys.path.insert(0, os.path.dirname(os.path.abspath({script!r})))\n"
        f"runpy.run_path({script!r}, run_name='__main__')\n"
    )


def command_to_python(command: str) -> str:
    """A released-format check command as a jail job: ``python …`` as :func:`python_source` runs it,
    anything else taken as Python source."""
    try:
        words = shlex.split(command)
    except ValueError:
        return command
    if len(words) < 2 or not PYTHON.fullmatch(words[0]):
        return command
    try:
        return python_source(words[1:])
    except PythonUsage:
        return command
