"""Run CLI cases as ``python -m rmguard`` runs, each in a fresh process, without paying the imports each time.

A case server (``python tests/cli_cases.py``) imports the libraries once and then, for every request on
stdin (a JSON line: folder and argv), forks a process that runs ``rmguard.cli.main(argv)`` in that folder
as ``python -m rmguard`` does (``raise SystemExit(main())``: an escaping exception prints its traceback),
with its fds 1 and 2 captured to files, and answers with a JSON line on its own result pipe. A fresh
interpreter per case would cost ~20 s of imports on shared cores; a forked one costs nothing.

:class:`CaseServer` is the client: started on first use, one request at a time, so any single case runs
alone (``pytest -k NAME``) and no case waits for another.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

CASE_CPU_S = 60  # per case, CPU seconds (a paused machine must not fail a case): a hang fails, not sticks


def run_case(folder: str, argv: list[str], keep_from_case: int | None = None) -> dict:
    """Fork one process that runs the CLI on ``argv`` in ``folder``; its exit code, stdout and stderr."""
    import resource
    import traceback

    from rmguard.cli import main

    out, err = Path(folder).with_suffix(".stdout"), Path(folder).with_suffix(".stderr")
    pid = os.fork()
    if pid == 0:
        os.chdir(folder)
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)  # a case that reads stdin must not wait on a tty
        os.dup2(os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 1)
        os.dup2(os.open(err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 2)
        if keep_from_case is not None:
            os.close(keep_from_case)  # the server's result pipe is not the case's
        resource.setrlimit(resource.RLIMIT_CPU, (CASE_CPU_S, CASE_CPU_S))
        try:
            code = main(argv)
        except SystemExit as stop:
            if isinstance(stop.code, str):
                print(stop.code, file=sys.stderr)
            code = stop.code if isinstance(stop.code, int) else 1
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    return {
        "rc": os.waitstatus_to_exitcode(status),
        "stdout": out.read_text(errors="replace"),
        "stderr": err.read_text(errors="replace"),
    }


def import_what_the_commands_import() -> None:
    """Every rmguard module (those of a missing optional extra aside) and the classes the commands reach
    through transformers' lazy module: without them each forked case imports ~2,000 modules (~3 s)."""
    import contextlib
    import importlib
    import pkgutil

    import datasets  # noqa: F401
    import matplotlib.pyplot  # noqa: F401
    import transformers

    import rmguard

    for module in pkgutil.walk_packages(rmguard.__path__, "rmguard."):
        if not module.name.endswith("__main__"):  # importing it would run the CLI
            with contextlib.suppress(ImportError):  # an optional extra's module, not installed
                importlib.import_module(module.name)
    for name in ("AutoConfig", "AutoTokenizer", "AutoModelForCausalLM", "AutoModelForSequenceClassification"):
        getattr(transformers, name)


def serve(result_fd: int) -> None:
    """The server: import what the commands import, then answer requests until stdin closes."""
    import_what_the_commands_import()
    results = os.fdopen(result_fd, "w")
    for line in sys.stdin:
        request = json.loads(line)
        results.write(json.dumps(run_case(request["folder"], request["argv"], result_fd)) + "\n")
        results.flush()


class CaseServer:
    """Client of one case server, started on the first :meth:`run`; calling it is :func:`helpers.run_cli`'s
    twin for a command that is expected to stop early (an error, a listing), not for a real run."""

    def __init__(self, scratch: Path) -> None:
        self._scratch = scratch  # the working folder of a call that names none
        self._process: subprocess.Popen | None = None
        self._results = None

    def __call__(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
        result = self.run(cwd or self._scratch, list(args))
        return subprocess.CompletedProcess(args, result["rc"], result["stdout"], result["stderr"])

    def run(self, folder: Path, argv: list[str]) -> dict:
        if self._process is None:
            self._start()
        self._process.stdin.write(json.dumps({"folder": str(folder), "argv": argv}) + "\n")
        self._process.stdin.flush()
        line = self._results.readline()
        if not line:
            raise RuntimeError(f"the case server stopped (exit {self._process.wait()})")
        return json.loads(line)

    def _start(self) -> None:
        tests = Path(__file__).parent
        read_end, write_end = os.pipe()  # results come back apart from anything the server prints
        env = {**os.environ, "PYTHONPATH": str(tests.parent / "src"), "OMP_NUM_THREADS": "1"}
        self._process = subprocess.Popen(
            [sys.executable, __file__, str(write_end)],
            stdin=subprocess.PIPE,
            env=env,
            text=True,
            pass_fds=(write_end,),
        )
        os.close(write_end)
        self._results = os.fdopen(read_end)

    def close(self) -> None:
        if self._process is not None:
            self._process.stdin.close()
            self._process.wait(timeout=60)
            self._results.close()
            self._process = None


if __name__ == "__main__":
    serve(int(sys.argv[1]))
