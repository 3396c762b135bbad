"""Pull-request diffs as data: hunks, commentable lines, what to summarise, what fits a budget. Pure.

GitHub's PR-files API gives each file's unified `patch` (absent for binary or very large files).
From it we know which lines of the new version a review comment may point at (added and context
lines inside hunks), which is how code — not the model — decides whether a finding can be a line
comment. Lock files, generated files and binaries are summarised in one line instead of sent.
The budget rule: whole hunks only, files of risky categories first, then other code, tests, docs.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from collections.abc import Callable
from dataclasses import dataclass, field

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")

LOCK_FILES = frozenset(
    {
        "package-lock.json",
        "npm-shrinkwrap.json",
        "yarn.lock",
        "pnpm-lock.yaml",
        "poetry.lock",
        "uv.lock",
        "Pipfile.lock",
        "Cargo.lock",
        "Gemfile.lock",
        "composer.lock",
        "go.sum",
        "pdm.lock",
        "bun.lockb",
        "flake.lock",
        "mix.lock",
        "packages.lock.json",
    }
)
GENERATED = (
    "*.min.js",
    "*.min.css",
    "*.map",
    "*_pb2.py",
    "*_pb2_grpc.py",
    "*.pb.go",
    "*.generated.*",
    "*/generated/*",
    "generated/*",
    "dist/*",
    "*/dist/*",
    "*.snap",
)
BINARY = (
    "*.png",
    "*.jpg",
    "*.jpeg",
    "*.gif",
    "*.ico",
    "*.webp",
    "*.pdf",
    "*.zip",
    "*.gz",
    "*.tar",
    "*.jar",
    "*.so",
    "*.dll",
    "*.dylib",
    "*.exe",
    "*.woff",
    "*.woff2",
    "*.ttf",
    "*.otf",
    "*.mp4",
    "*.mp3",
    "*.wasm",
)


@dataclass(frozen=True)
class Hunk:
    header: str
    lines: tuple[str, ...]  # the hunk's lines, with their +/-/space prefix
    new_lines: frozenset[int]  # new-side line numbers a review comment may point at

    @property
    def text(self) -> str:
        return "\n".join((self.header, *self.lines))

    @property
    def added(self) -> tuple[tuple[int, str], ...]:
        """(new-side line number, text) of every added line."""
        match = _HUNK.match(self.header)
        number = int(match[3]) if match else 1
        added: list[tuple[int, str]] = []
        for line in self.lines:
            if line.startswith("+"):
                added.append((number, line[1:]))
                number += 1
            elif not line.startswith(("-", "\\")):
                number += 1
        return tuple(added)


@dataclass(frozen=True)
class FileDiff:
    path: str
    status: str  # added, modified, removed, renamed, …
    additions: int
    deletions: int
    hunks: tuple[Hunk, ...] = ()
    previous_path: str | None = None
    kind: str = "code"  # code | lock | generated | binary | large
    patch: str | None = None  # GitHub's patch text as given (None: omitted, the file is too large)

    def added_lines(self) -> list[tuple[int, str]] | None:
        """(line number, text) of every added line, whatever the file's kind (a lock file, a
        minified bundle); None when GitHub gave no patch to read."""
        if self.patch is None:
            return None
        return [pair for hunk in parse_patch(self.patch) for pair in hunk.added]

    @property
    def commentable(self) -> frozenset[int]:
        lines: set[int] = set()
        for hunk in self.hunks:
            lines |= hunk.new_lines
        return frozenset(lines)

    @property
    def summary(self) -> str:
        return (
            f"{self.path} ({self.status}, +{self.additions} −{self.deletions}, {self.kind} file: not shown)"
        )


def parse_patch(patch: str) -> tuple[Hunk, ...]:
    hunks: list[Hunk] = []
    header: str | None = None
    body: list[str] = []
    new_lines: set[int] = set()
    line_no = 0
    for raw in patch.splitlines():
        match = _HUNK.match(raw)
        if match:
            if header is not None:
                hunks.append(Hunk(header, tuple(body), frozenset(new_lines)))
            header, body, new_lines = raw, [], set()
            line_no = int(match.group(3))
            continue
        if header is None:
            continue
        body.append(raw)
        if raw.startswith("+") or raw.startswith(" ") or raw == "":
            new_lines.add(line_no)
            line_no += 1
        # "-" lines exist only on the old side; "\\ No newline at end of file" is no line at all
    if header is not None:
        hunks.append(Hunk(header, tuple(body), frozenset(new_lines)))
    return tuple(hunks)


def matches(path: str, patterns: tuple[str, ...] | list[str]) -> bool:
    name = path.rsplit("/", 1)[-1]
    for pattern in patterns:
        if fnmatch.fnmatchcase(path, pattern) or fnmatch.fnmatchcase(name, pattern):
            return True
        if pattern.startswith("**/") and fnmatch.fnmatchcase(path, pattern[3:]):
            return True
    return False


def kind_of(path: str, patch: str | None) -> str:
    if path.rsplit("/", 1)[-1] in LOCK_FILES:
        return "lock"
    if matches(path, BINARY):
        return "binary"
    if matches(path, GENERATED):
        return "generated"
    if patch is None:
        return "large"  # GitHub omits the patch of binary and very large files
    return "code"


def from_texts(changes: dict[str, tuple[str | None, str | None]]) -> list[FileDiff]:
    """FileDiffs of a change Autopack made itself (path → (before, after)), exactly as GitHub would
    list them for the pull request: the audit before a push sees the same diff as the one after."""
    items: list[dict[str, object]] = []
    for path, (old, new) in sorted(changes.items()):
        a = (old or "").splitlines(keepends=True)
        b = (new or "").splitlines(keepends=True)
        lines = list(difflib.unified_diff(a, b, n=3))[2:]  # GitHub's patch has no ---/+++ lines
        patch = "".join(line if line.endswith("\n") else line + "\n" for line in lines).rstrip("\n")
        items.append(
            {
                "filename": path,
                "status": "added" if old is None else "removed" if new is None else "modified",
                "additions": sum(1 for line in lines if line.startswith("+")),
                "deletions": sum(1 for line in lines if line.startswith("-")),
                "patch": patch,
            }
        )
    return from_api(items)


def from_api(files: list[dict[str, object]]) -> list[FileDiff]:
    """FileDiffs from GitHub's `GET /pulls/{n}/files` items."""
    result = []
    for item in files:
        path = str(item.get("filename") or "")
        patch = item.get("patch")
        patch_text = patch if isinstance(patch, str) else None
        kind = kind_of(path, patch_text)
        result.append(
            FileDiff(
                path=path,
                status=str(item.get("status") or "modified"),
                additions=int(item.get("additions") or 0),  # type: ignore[call-overload]
                deletions=int(item.get("deletions") or 0),  # type: ignore[call-overload]
                hunks=parse_patch(patch_text) if kind == "code" and patch_text else (),
                previous_path=str(item["previous_filename"]) if item.get("previous_filename") else None,
                kind=kind,
                patch=patch_text,
            )
        )
    return result


@dataclass(frozen=True)
class FittedDiff:
    text: str
    included_hunks: int
    omitted: tuple[str, ...] = ()  # "path (N of M hunks omitted)" lines, stated to the model
    summarised: tuple[str, ...] = field(default=())


def fit(
    files: list[FileDiff],
    *,
    budget_tokens: int,
    count: Callable[[str], int],
    priority: Callable[[FileDiff], int],
) -> FittedDiff:
    """The diff text within `budget_tokens`, whole hunks only, in `priority` order (lower first).

    Files keep their place in the diff's order within a priority; a hunk that does not fit is
    omitted (later, smaller hunks may still fit) and the omission is listed.
    """
    summarised = tuple(f.summary for f in files if f.kind != "code")
    code = sorted((f for f in files if f.kind == "code"), key=priority)
    used = count("\n".join(summarised))
    parts: list[str] = []
    omitted: list[str] = []
    included = 0
    for diff in code:
        header = f"--- {diff.previous_path or diff.path}\n+++ {diff.path}"
        header_cost = count(header)
        kept: list[str] = []
        dropped = 0
        for hunk in diff.hunks:
            cost = count(hunk.text) + (0 if kept else header_cost)
            if used + cost <= budget_tokens:
                kept.append(hunk.text)
                used += cost
            else:
                dropped += 1
        if kept:
            parts.append("\n".join((header, *kept)))
            included += len(kept)
        if dropped:
            omitted.append(f"{diff.path} ({dropped} of {len(diff.hunks)} hunks omitted)")
    return FittedDiff("\n".join(parts), included, tuple(omitted), summarised)
