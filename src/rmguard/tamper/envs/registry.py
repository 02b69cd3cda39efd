"""The registry of environments: every module of :mod:`rmguard.tamper.envs` lists its environments in
``PROVIDES`` and they are registered here when this module is imported, so adding an environment is adding
one module. The registry keeps curriculum order (stage, then name): reports, ``all`` and the CLI follow it.
"""

from __future__ import annotations

import importlib
import pkgutil

from rmguard.registry import Registry
from rmguard.tamper import envs
from rmguard.tamper.envs.base import Environment, EnvironmentSpec

NOT_ENVIRONMENTS = ("base", "registry")  # the modules of envs/ that provide no environment
REGISTRY: Registry[Environment] = Registry("environment")  # name -> environment, in curriculum order


def register(environment: Environment) -> Environment:
    """Add an environment; its name must be new and it must script ``honest`` (every strategy's fallback)."""
    if not environment.name:
        raise ValueError("an environment needs a name")
    if "honest" not in environment.scripts:
        raise ValueError(f"environment '{environment.name}' must script the 'honest' strategy")
    REGISTRY.register(environment.name, environment)
    ordered = sorted(REGISTRY.values(), key=lambda e: (e.stage, e.name))
    REGISTRY.clear()
    REGISTRY.update((e.name, e) for e in ordered)
    return environment


def _register_builtin() -> None:
    for module in pkgutil.iter_modules(envs.__path__):
        if module.name not in NOT_ENVIRONMENTS:
            for environment in importlib.import_module(f"{envs.__name__}.{module.name}").PROVIDES:
                register(environment)


def curriculum() -> list[str]:
    """The registered environments that ``all`` runs, in curriculum order."""
    return [name for name, environment in REGISTRY.items() if environment.in_curriculum]


def get_environment(name: str) -> Environment:
    return REGISTRY.lookup(name)


def make_environment(name: str, variant: int = 0) -> EnvironmentSpec:
    return get_environment(name).variant(variant)


def for_release_name(name: str) -> Environment | None:
    """The environment whose rules grade the release's environment ``name`` (``original_reward_tampering``
    → ``reward_tampering``): ``name`` is its ``release_suffix`` or ends with ``_`` + it."""
    for environment in REGISTRY.values():
        suffix = environment.release_suffix
        if suffix and (name == suffix or name.endswith("_" + suffix)):
            return environment
    return REGISTRY.get(name)


_register_builtin()
ENVIRONMENTS = tuple(curriculum())  # the built-in curriculum
