"""A missing package is one line saying what to install, never a traceback (the import failure simulated)."""

from __future__ import annotations

import sys

import pytest

from rmguard.cli import main
from rmguard.errors import ConfigError
from rmguard.optional import install_hint, require


def _hide(monkeypatch, package: str) -> None:
    """Make ``import package`` (and its submodules) fail as if it were not installed."""
    for name in [n for n in sys.modules if n == package or n.startswith(package + ".")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, package, None)
    for name in [n for n in sys.modules if n.startswith("rmguard.serve")]:
        monkeypatch.delitem(sys.modules, name)  # imported again, so they meet the missing package


def test_hints_name_the_extra_or_the_reinstall():
    assert install_hint("wandb") == "pip install 'rmguard[wandb]'"
    assert install_hint("httpx._client") == "pip install 'rmguard[dev]'"
    assert "reinstall" in install_hint("starlette.applications")
    assert install_hint("somethingelse") == "pip install somethingelse"


def test_require_is_one_line_naming_the_extra(monkeypatch):
    _hide(monkeypatch, "wandb")
    with pytest.raises(ConfigError) as error:
        require("wandb", "report_to: wandb")
    assert str(error.value) == (
        "report_to: wandb needs the 'wandb' package, which is not installed: pip install 'rmguard[wandb]'"
    )


@pytest.mark.parametrize("package", ["starlette", "uvicorn"])
def test_serve_without_its_server_packages_is_one_line(monkeypatch, capsys, tmp_path, package):
    _hide(monkeypatch, package)
    assert main(["serve", "--model", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"rmguard serve: error: the '{package}' package is not installed")
    assert "pip install -c constraints.txt -e ." in err
