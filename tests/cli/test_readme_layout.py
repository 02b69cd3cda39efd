"""README's "Code layout" names only what exists: each `package/` or `module.py` it lists is in src/rmguard."""

from __future__ import annotations

import re

from helpers import REPO


def test_code_layout_names_existing_packages_and_modules() -> None:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Code layout", 1)[1].split("\n## ", 1)[0]
    named = [n for n in re.findall(r"`([\w/]+(?:/|\.py))`", section) if n != "src/rmguard/"]
    assert named, "the section names no package or module"
    root = REPO / "src" / "rmguard"
    missing = [name for name in named if not (root / name).exists()]
    assert not missing, f"README's Code layout names what src/rmguard lacks: {missing}"
    assert "docs/architecture.md" in section
