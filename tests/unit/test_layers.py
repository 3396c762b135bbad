"""DESIGN §2: policy/ is pure; web/ never reaches GitHub or a model."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[2] / "app"


def imports(folder: str) -> list[tuple[str, str]]:
    found = []
    for path in (APP / folder).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                found.append((path.name, node.module))
            elif isinstance(node, ast.Import):
                found.extend((path.name, alias.name) for alias in node.names)
    return found


@pytest.mark.parametrize(
    ("folder", "forbidden"),
    [
        (
            "policy",
            (
                "app.github",
                "app.llm",
                "app.inbox",
                "app.web",
                "app.flows",
                "githubkit",
                "httpx",
                "openai",
                "anthropic",
                "psycopg",
                "sqlite3",
            ),
        ),
        ("web", ("app.llm", "openai", "anthropic", "githubkit")),
    ],
)
def test_layer_imports(folder: str, forbidden: tuple[str, ...]) -> None:
    bad = [(f, m) for f, m in imports(folder) if m.startswith(forbidden)]
    assert bad == []


def test_the_event_models_import_nothing_that_does_io() -> None:
    """`app/events.py` is read by `policy/`, so it must be as pure as policy is."""
    tree = ast.parse((APP / "events.py").read_text())
    modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    modules |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert modules <= {"__future__", "typing", "pydantic", "app.errors"}, modules
