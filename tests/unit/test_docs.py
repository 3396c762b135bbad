"""The documentation says exactly what the code accepts, and the site builds without a broken link.

The configuration reference (`docs/configuration.md`) must name every setting `Settings` reads and
nothing it does not; the policy file reference (`docs/policy.md`) must show every key `RepoPolicy`
accepts, down to each section's keys, and nothing unknown. A setting or key added without its
documentation, or documentation left behind by a removed one, fails here.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.policy.repo_policy import RepoPolicy
from app.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
# Read from the environment directly, before Settings exists (it says where Settings' files are).
ENVIRONMENT_ONLY = {"AUTOPACK_SECRETS_DIR"}


def documented_variables(text: str) -> set[str]:
    """The variables named in the first column of the environment table."""
    names: set[str] = set()
    for line in text.splitlines():
        cells = line.split("|")
        if len(cells) > 2 and line.startswith("|"):
            names |= set(re.findall(r"`([A-Z][A-Z0-9_]+)`", cells[1]))
    return names


def documented_policy_keys(text: str) -> set[str]:
    """`section.key` for every key of the YAML example in the policy reference."""
    (block,) = re.findall(r"```yaml\n(.*?)```", text, flags=re.S)
    data: dict[str, Any] = yaml.safe_load(block)
    keys = {"_extends"} if "_extends" in data else set()
    for section, body in data.items():
        if section == "_extends":
            continue
        keys.add(section)
        keys |= {f"{section}.{key}" for key in (body or {})}
    return keys


def policy_keys() -> set[str]:
    keys = {"_extends"}  # read by the loader before validation (Probot's convention)
    for section, field in RepoPolicy.model_fields.items():
        keys.add(section)
        model = field.annotation
        assert isinstance(model, type)
        keys |= {f"{section}.{key}" for key in model.model_fields}
    return keys


def test_every_setting_is_documented_and_nothing_else() -> None:
    code = {name.upper() for name in Settings.model_fields} | ENVIRONMENT_ONLY
    documented = documented_variables((DOCS / "configuration.md").read_text())
    assert sorted(code - documented) == [], "settings the configuration reference does not name"
    assert sorted(documented - code) == [], "documented settings the code does not read"


def test_every_policy_key_is_documented_and_nothing_else() -> None:
    documented = documented_policy_keys((DOCS / "policy.md").read_text())
    assert sorted(policy_keys() - documented) == [], "policy keys the reference does not show"
    assert sorted(documented - policy_keys()) == [], "documented policy keys the code does not accept"


def test_the_documented_example_is_a_valid_policy_file() -> None:
    from app.policy.repo_policy import parse

    (block,) = re.findall(r"```yaml\n(.*?)```", (DOCS / "policy.md").read_text(), flags=re.S)
    parse(block.replace("_extends: .github", "# _extends: .github"))


def test_the_checks_see_a_missing_entry() -> None:
    assert documented_variables("| `PORT` | x | y |\n| `A_B`, `CD` | z | w |") == {"PORT", "A_B", "CD"}
    assert documented_policy_keys("```yaml\nmerge:\n  method: squash\n```") == {"merge", "merge.method"}


@pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None, reason="mkdocs is a dev dependency")
def test_the_site_builds_strictly(tmp_path: Path) -> None:
    """`mkdocs build --strict`: a broken link or anchor, or a page left out of the nav, fails."""
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "site" / "policy" / "index.html").is_file()
