"""`autopack secrets scan|redact PATH...`: the push audit's secret detectors, on files, for people.

The same detectors as the push audit and the redaction every prompt goes through, so a maintainer
can check a file before committing it (or as a pre-commit hook: `.pre-commit-hooks.yaml`), and see
exactly what a model would receive of a file.

- `scan` prints each finding (path, line, kind, the redacted value, the detector) and exits 1 when
  there is one, 0 when there is none, 2 when a path cannot be read;
- `redact` prints, for every file with a finding, its text as a model would receive it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import click

from app.policy import secrets

SKIPPED_DIRS = frozenset({".git", ".hg", ".svn", "node_modules", ".venv", "venv", "__pycache__", ".tox"})
MAX_FILE_BYTES = secrets.MAX_SCAN_CHARS


def _files(paths: tuple[str, ...]) -> Iterator[Path]:
    for name in paths:
        path = Path(name)
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_file() and not SKIPPED_DIRS & set(child.relative_to(path).parts):
                    yield child
        else:
            yield path


def _read(path: Path) -> str | None:
    """The file's text; None for a binary file (a NUL byte) or one too large to scan."""
    data = path.read_bytes()
    if b"\0" in data[:8192] or len(data) > MAX_FILE_BYTES:
        return None
    return data.decode("utf-8", errors="replace")


@click.group("secrets")
def secrets_group() -> None:
    """Find secrets in files, or show them as a model would receive them (redacted)."""


@secrets_group.command("scan")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.argument("paths", nargs=-1, required=True)
def scan(fmt: str, paths: tuple[str, ...]) -> None:
    """Report secrets in PATHS (files or directories). Exit 1 when any is found."""
    findings: list[dict[str, object]] = []
    not_scanned: list[str] = []
    try:
        for path in _files(paths):
            text = _read(path)
            if text is None:
                not_scanned.append(str(path))
                continue
            starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]
            for span in secrets.find(text, str(path)):
                line = next(n for n in range(len(starts), 0, -1) if starts[n - 1] <= span.start)
                findings.append(
                    {
                        "path": str(path),
                        "line": line,
                        "kind": span.kind,
                        "redacted": secrets.redact_value(text[span.start : span.end]),
                        "detector": span.detector,
                    }
                )
    except OSError as exc:
        click.echo(f"autopack secrets: cannot read {exc.filename}: {exc.strerror}", err=True)
        sys.exit(2)
    if fmt == "json":
        click.echo(json.dumps(findings, indent=2))
    else:
        for f in findings:
            click.echo(f"{f['path']}:{f['line']}: {f['kind']} ({f['redacted']}) [{f['detector']}]")
        for name in not_scanned:
            click.echo(f"{name}: not scanned (binary or larger than {MAX_FILE_BYTES:,} bytes)", err=True)
        if findings:
            click.echo(
                f"{len(findings)} secret{'s' if len(findings) != 1 else ''} found. A false positive: add "
                f"`{secrets.ALLOW_MARKER}` in a comment on its line.",
                err=True,
            )
    sys.exit(1 if findings else 0)


@secrets_group.command("redact")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.argument("paths", nargs=-1, required=True)
def redact(fmt: str, paths: tuple[str, ...]) -> None:
    """Print every file in PATHS that holds a secret, as a model would receive it."""
    shown: dict[str, str] = {}
    try:
        for path in _files(paths):
            text = _read(path)
            if text is not None and secrets.find(text, str(path)):
                shown[str(path)] = secrets.redact(text, str(path))
    except OSError as exc:
        click.echo(f"autopack secrets: cannot read {exc.filename}: {exc.strerror}", err=True)
        sys.exit(2)
    if fmt == "json":
        click.echo(json.dumps(shown, indent=2))
        return
    for name, text in shown.items():
        click.echo(f"==> {name} <==")
        click.echo(text)
