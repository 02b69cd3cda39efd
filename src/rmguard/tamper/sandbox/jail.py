"""Isolated execution of model-written Python (the reward-tampering checks).

Jobs run in a jail built by the fork server in :mod:`rmguard.tamper.sandbox._jail`: a tmpfs root that holds only the
job's files (in the home folder the records name, ``/root``) plus the Python installation and ``/usr`` bound read-only; new mount,
network, PID, IPC and UTS namespaces (no network interface is up, so no network); a user of the job's own
with no_new_privs, a fresh session keyring and a seccomp filter (no ptrace, keyring, namespace, mount, BPF,
perf or io_uring calls); rlimits on CPU time, processes, file size and open files; memory capped for the
job as a whole (a cgroup v2 where the host allows one, else processes x address space per process);
an empty environment; a wall-clock timeout after which the whole PID namespace is killed; stdout and
stderr capped. The jail needs root (to create namespaces and switch user). Without it, or when the kernel
refuses a namespace or the filter, :class:`JailUnavailable` is raised: the code is never run unsandboxed.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

from rmguard.errors import RMGuardError
from rmguard.tamper.sandbox.base import HOME

JAIL_SCRIPT = Path(__file__).with_name("_jail.py")
logger = logging.getLogger(__name__)


class JailUnavailable(RMGuardError):
    """The isolation this host offers is not enough to run untrusted code."""


@dataclass(frozen=True)
class JailLimits:
    timeout_seconds: float = 5.0
    cpu_seconds: int = 2
    memory_bytes: int = 512 * 1024 * 1024  # for the job as a whole
    max_processes: int = 8
    file_bytes: int = 1024 * 1024
    disk_bytes: int = 16 * 1024 * 1024
    output_bytes: int = 64 * 1024


@dataclass
class Execution:
    """How the process ended; ``outcome`` is ok, error (non-zero exit), timeout (wall clock or CPU time),
    killed (another signal), or limit (the job's files could not be materialised in the jail; nothing ran).

    ``result`` is what the job wrote to file descriptor 3, the result channel of a trusted harness (see
    :mod:`rmguard.tamper.sandbox._jail`); stdout and stderr are the job's output, data only. ``memory_cap`` says
    how the job's memory was capped and, where the host allowed less than a cgroup, why.
    """

    outcome: str
    stdout: str
    stderr: str
    exit_code: int | None
    signal: int | None
    truncated: bool
    result: str = ""
    memory_cap: str = ""


def _outcome(raw: dict, cpu_seconds: float) -> str:
    """ok, error, timeout or killed. Out of CPU time is a timeout however the kernel ended the process:
    SIGXCPU at the soft limit, or SIGKILL at the hard one when the job ignored SIGXCPU."""
    out_of_cpu = (
        raw["signal"] in (signal.SIGXCPU, signal.SIGKILL) and raw["cpu_seconds"] >= 0.9 * cpu_seconds
    )  # rusage and the CPU clock round apart
    if raw["timed_out"] or out_of_cpu:
        return "timeout"
    if raw["signal"] is not None:
        return "killed"
    return "ok" if raw["exit_code"] == 0 else "error"


def _read_only_binds() -> list[str]:
    """System paths the interpreter needs: /usr, the libc symlinks, and the Python installation."""
    binds = ["/usr", "/lib", "/lib64", "/bin"]
    for prefix in {sys.base_prefix, sys.base_exec_prefix, os.path.dirname(os.path.realpath(sys.executable))}:
        if not any(prefix == b or prefix.startswith(b.rstrip("/") + "/") for b in binds):
            binds.append(prefix)
    return binds


class Jail:
    """A warm fork server; ``run`` is thread-safe (jobs are serialised per server)."""

    def __init__(self, limits: JailLimits | None = None):
        self.limits = limits or JailLimits()
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._root: str | None = None
        self.memory_cap = ""  # how jobs' memory is capped, once one ran (see Execution.memory_cap)

    def run(self, files: dict[str, str], code: str) -> Execution:
        job = {**asdict(self.limits), "files": files, "code": code, "binds": _read_only_binds(), "home": HOME}
        with self._lock:
            raw = self._request(job)
        if "setup_error" in raw:
            raise JailUnavailable(
                f"cannot build the jail, refusing to run untrusted code: {raw['setup_error']}"
            )
        if "files_error" in raw:  # the job's files exceed what the jail can hold: this job's limit
            return Execution("limit", "", raw["files_error"], None, None, False)
        if raw["memory_cap"] != self.memory_cap:
            self.memory_cap = raw["memory_cap"]
            if "degraded" in self.memory_cap:
                logger.warning("jail memory cap: %s", self.memory_cap)
        return Execution(
            _outcome(raw, self.limits.cpu_seconds),
            raw["stdout"],
            raw["stderr"],
            raw["exit_code"],
            raw["signal"],
            raw["truncated"],
            raw["result"],
            raw["memory_cap"],
        )

    def _request(self, job: dict) -> dict:
        process = self._server()
        data = json.dumps(job).encode()
        try:
            process.stdin.write(struct.pack(">I", len(data)) + data)
            process.stdin.flush()
            header = process.stdout.read(4)
            (size,) = struct.unpack(">I", header)
            return json.loads(process.stdout.read(size))
        except (OSError, struct.error, ValueError) as error:
            self.close()
            raise JailUnavailable(f"the jail server stopped unexpectedly ({error})") from error

    def _server(self) -> subprocess.Popen:
        if self._process is not None and self._process.poll() is None:
            return self._process
        if sys.platform != "linux":
            raise JailUnavailable("isolated execution needs Linux namespaces")
        if os.geteuid() != 0:
            raise JailUnavailable(
                "isolated execution needs root (to create namespaces and switch to user nobody); "
                "run the reward-tampering checks as root, e.g. in a container"
            )
        self._root = tempfile.mkdtemp(prefix="rmguard-jail-")
        os.chmod(self._root, 0o755)
        self._process = subprocess.Popen(
            [sys.executable, "-I", "-S", str(JAIL_SCRIPT), self._root],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={},
            close_fds=True,
        )
        return self._process

    def close(self) -> None:
        if self._process is not None:
            self._process.stdin.close()
            self._process.wait(timeout=10)
            self._process.stdout.close()
            self._process = None
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None

    def __enter__(self) -> Jail:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
