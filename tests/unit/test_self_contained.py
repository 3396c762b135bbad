"""The tests and tools read nothing outside the repository, so a plain clone runs them.

The webhook fixtures once came from a `shared/` folder beside the repository, which only the
developers' machines have; a fresh clone then failed its first component test. This test reads the
source of every test, benchmark and tool and refuses any way of reaching above the repository root:
`Path(__file__).parents[N]` or `.parent` chains that climb out, relative paths that start with
`../`, the old `shared/` fixture location, and absolute paths into a developer's machine.
`.ci/run` proves the same thing end to end by running the suite in a clone with nothing beside it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted(
    [ROOT / "conftest.py", ROOT / ".ci" / "run"]
    + [p for folder in ("tests", "bench", "tools") for p in (ROOT / folder).rglob("*.py")]
)

PARENTS = re.compile(r"Path\(__file__\)(?:\.resolve\(\))?\.parents\[(\d+)\]")
PARENT_CHAIN = re.compile(r"Path\(__file__\)(?:\.resolve\(\))?((?:\.parent)+)")
FORBIDDEN = [
    (re.compile(r"""(?:Path|open|environ\.get|getenv)\([^)]*["']\.\./"""), "a path relative to ../"),
    (re.compile(r"""["'][^"'\n]*shared/fixtures"""), "the old shared/fixtures location"),
    (re.compile(r"""["']/(?:work|home|root|Users)/"""), "an absolute path on a developer's machine"),
    (re.compile(r"AUTOPACK_FIXTURES"), "fixtures taken from outside the repository"),
]


def _inside(path: Path) -> bool:
    return path == ROOT or ROOT in path.parents


def _problems(path: Path, text: str) -> list[str]:
    found = []
    for match in PARENTS.finditer(text):
        target = path.parents[int(match.group(1))]
        if not _inside(target):
            found.append(f"{match.group(0)} is {target}, outside the repository")
    for match in PARENT_CHAIN.finditer(text):
        target = path
        for _ in range(match.group(1).count(".parent")):
            target = target.parent
        if not _inside(target):
            found.append(f"{match.group(0)} is {target}, outside the repository")
    for pattern, why in FORBIDDEN:
        found += [f"{m.group(0)!r}: {why}" for m in pattern.finditer(text)]
    return found


def test_sources_are_found() -> None:
    assert len(SOURCES) > 50
    assert ROOT / "tests" / "support.py" in SOURCES


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_path_outside_the_repository(path: Path) -> None:
    if path == Path(__file__).resolve():
        return  # this file names the forbidden forms as patterns
    assert _problems(path, path.read_text()) == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('FIXTURES = Path(__file__).resolve().parents[3] / "shared"', 1),
        ("BASE = Path(__file__).parent.parent.parent.parent", 1),
        ('p = Path("../shared/fixtures/github-webhooks")', 2),
        ('os.environ.get("AUTOPACK_FIXTURES", "x")', 1),
        ('key = open("/work/shared/key.pem")', 1),
        ('HERE = Path(__file__).resolve().parents[1] / "fixtures"', 0),
        ('edit("create", "../outside.py")', 0),  # data for the guardrails, not a path read
    ],
)
def test_the_check_catches_each_form(source: str, expected: int) -> None:
    # As if written in tests/unit/, two levels below the root.
    assert len(_problems(ROOT / "tests" / "unit" / "x.py", source)) == expected
