"""The service runs on the HTTP stack the tests run: `httpx` is `httpx2` once `app` is imported.

Checked in a fresh interpreter, where no conftest.py has aliased anything first."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_app_gives_githubkit_the_httpx2_stack() -> None:
    probe = (
        "import app.cli, githubkit, httpx, httpcore, httpx2, httpcore2;"
        "print(httpx is httpx2, httpcore is httpcore2)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "True"]
