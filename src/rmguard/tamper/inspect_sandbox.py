"""rmguard's virtual sandbox as an Inspect sandbox: ``sandbox=("rmguard", VirtualSandboxConfig(...))``.

Each sample gets its own :class:`~rmguard.tamper.sandbox.virtual.VirtualSandbox`, built from the sample's
environment (``metadata["spec"]``) when Inspect initialises the sample, with the process jail where the
environment's grading runs model code. The solver plays the episode in it and the scorer grades the state it
left, as Inspect scorers read a sample's sandbox (:mod:`rmguard.tamper.inspect_tasks`). Nothing touches the
host: ``exec`` runs a command line in the virtual shell, so Inspect's own ``bash -c LINE`` form works, and
``read_file``/``write_file`` move text in and out of the virtual filesystem.

Every command line runs under the shell's own time and output budgets (so a ``timeout`` asks for nothing
more); Inspect's per-call ``cwd``, ``env`` and ``input`` have no meaning in the virtual shell and are
refused, and a ``user`` with :class:`~inspect_ai.util.SandboxUserUnsupportedError`, as Inspect asks of
providers.
"""

from __future__ import annotations

import asyncio
import atexit
import shlex
from typing import Any

from inspect_ai.util import (
    ExecResult,
    SandboxEnvironment,
    SandboxEnvironmentConfigType,
    SandboxUserUnsupportedError,
    sandboxenv,
)
from pydantic import BaseModel

from rmguard.tamper.envs.base import EnvironmentSpec
from rmguard.tamper.envs.registry import REGISTRY
from rmguard.tamper.protocol import EpisodeConfig
from rmguard.tamper.sandbox.base import HOME
from rmguard.tamper.sandbox.jail import Jail
from rmguard.tamper.sandbox.virtual import VirtualSandbox

SHELLS = ("bash", "sh", "/bin/bash", "/bin/sh")
LOGIN_FLAGS = ("--login", "-l")

_JAIL: list[Jail] = []  # one fork server per process, started on first use


def _jail() -> Jail:
    if not _JAIL:
        _JAIL.append(Jail())
        atexit.register(_JAIL[0].close)
    return _JAIL[0]


def jail_for(spec: EnvironmentSpec) -> Jail | None:
    """The process's jail where ``spec``'s grading runs model code, else None (python is not installed)."""
    return _jail() if REGISTRY[spec.name].needs_jail(spec) else None


class VirtualSandboxConfig(BaseModel, frozen=True):
    """The task's settings for its samples' sandboxes."""

    max_output_chars: int  # characters of output kept per command (the task's EpisodeConfig's)


def command_line(cmd: list[str]) -> str:
    """The command line an Inspect ``exec`` means: ``LINE`` of ``bash [--login] -c LINE`` (or ``sh``),
    else the words quoted as a shell would need them."""
    words = [w for w in cmd[1:] if w not in LOGIN_FLAGS] if cmd and cmd[0] in SHELLS else []
    if len(words) == 2 and words[0] == "-c":
        return words[1]
    return shlex.join(cmd)


@sandboxenv(name="rmguard")
class InspectVirtualSandbox(SandboxEnvironment):
    """An Inspect sandbox over one sample's :class:`VirtualSandbox` (``sandbox``, the rmguard interface the
    solver and the graders use)."""

    def __init__(self, sandbox: VirtualSandbox):
        super().__init__()
        self.sandbox = sandbox

    @classmethod
    def config_deserialize(cls, config: dict[str, Any]) -> BaseModel:
        return VirtualSandboxConfig(**config)

    @classmethod
    async def sample_init(
        cls, task_name: str, config: SandboxEnvironmentConfigType | None, metadata: dict[str, Any]
    ) -> dict[str, SandboxEnvironment]:
        if config is None:
            config = VirtualSandboxConfig(max_output_chars=EpisodeConfig().max_output_chars)
        if not isinstance(config, VirtualSandboxConfig):
            raise ValueError(f"the rmguard sandbox's config is a VirtualSandboxConfig, not {config!r}")
        if "spec" not in metadata:
            raise ValueError("the rmguard sandbox builds a sample's machine from its metadata['spec']")
        spec = EnvironmentSpec(**metadata["spec"])
        box = VirtualSandbox.from_files(spec.dirs, spec.files, HOME, jail_for(spec), config.max_output_chars)
        return {"default": cls(box)}

    @classmethod
    async def sample_cleanup(
        cls,
        task_name: str,
        config: SandboxEnvironmentConfigType | None,
        environments: dict[str, SandboxEnvironment],
        interrupted: bool,
    ) -> None:
        """Nothing to clean: the machine is in memory, and the jail leaves nothing after each job."""

    async def exec(
        self,
        cmd: list[str],
        input: str | bytes | None = None,
        cwd: str | None = None,
        env: dict[str, str] | None = None,
        user: str | None = None,
        timeout: int | None = None,
        timeout_retry: bool = True,
        concurrency: bool = True,
    ) -> ExecResult[str]:
        if user is not None:
            raise SandboxUserUnsupportedError("the rmguard sandbox has one user, the model's")
        unsupported = [name for name, value in (("input", input), ("cwd", cwd), ("env", env)) if value]
        if unsupported:
            raise ValueError(f"the rmguard sandbox runs command lines only (no {', '.join(unsupported)})")
        result = await asyncio.to_thread(self.sandbox.exec, command_line(cmd))
        return ExecResult(result.status == 0, result.status, result.stdout, result.stderr)

    async def read_file(self, file: str, text: bool = True) -> Any:
        contents = self.sandbox.read_file(file)
        return contents if text else contents.encode("utf-8")

    async def write_file(self, file: str, contents: str | bytes) -> None:
        text = contents if isinstance(contents, str) else contents.decode("utf-8")
        self.sandbox.write_file(file, text)
