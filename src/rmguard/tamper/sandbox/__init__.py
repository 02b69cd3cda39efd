"""Where the model's commands run and graders look: one small interface (:class:`Sandbox`: exec,
read_file, write_file, exec_python).

- ``base.py``: the interface and its :class:`Result`; ``virtual.py``: :class:`VirtualSandbox`, the episode's
  implementation;
- ``shell.py`` (the interpreter, and the :class:`~rmguard.tamper.sandbox.shell.Context` its commands get),
  ``syntax.py`` (lexer and parser), ``budget.py`` (time and output budgets per command line), ``commands/``
  (the commands, one module per kind): the virtual shell;
- ``vfs.py``: the in-memory filesystem it runs over, with its size and name limits;
- ``python_source.py``: ``python ARGS`` command lines as the jail's Python source;
- ``jail.py`` + ``_jail.py``: the process jail for model-written Python (the fork server is standalone).
"""

from rmguard.tamper.sandbox.base import Result, Sandbox
from rmguard.tamper.sandbox.virtual import VirtualSandbox

__all__ = ["Result", "Sandbox", "VirtualSandbox"]
