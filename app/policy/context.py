"""Which repository files the builder sees. Pure: the tree and the issue in, ranked candidates out.

The builder can only fix what it is shown, and every file shown costs tokens, so candidates are
ranked by how directly the feedback points at them: paths named in the issue, then files whose
names match identifiers in the issue, then the affected area's files; each candidate brings the
tests beside it. The flow fetches them in this order until the token budget is spent and records
what was included and what was left out, for the pull request's body.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass

from app.policy.guardrails import secret_bearing
from app.policy.sanitize import sanitize

MAX_CANDIDATES = 40
MAX_FILE_BYTES = 80_000  # larger files are listed, not sent
_SOURCE = re.compile(
    r"\.(py|pyi|js|jsx|ts|tsx|mjs|cjs|go|rs|rb|java|kt|kts|scala|c|h|cc|cpp|hpp|cs|php|swift|m|ex|exs|"
    r"erl|clj|hs|ml|lua|sh|sql|vue|svelte|md|rst|txt|toml|yaml|yml|json|cfg|ini)$"
)
_PATHLIKE = re.compile(r"(?<![\w/.-])((?:[\w.-]+/)*[\w.-]+\.[A-Za-z0-9]{1,6})(?::\d+)?")
_IDENT = re.compile(r"`([^`\n]{2,80})`|\b([A-Za-z_][A-Za-z0-9]*(?:_[A-Za-z0-9]+)+|[a-z]+(?:[A-Z][a-z0-9]+)+|"
                    r"[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]+)+)\b")  # fmt: skip
_CONVENTIONS = (
    "CONTRIBUTING.md",
    ".github/CONTRIBUTING.md",
    "docs/CONTRIBUTING.md",
    "README.md",
    "README.rst",
)
_VENDORED = ("node_modules", "vendor", "third_party", "dist", "build", ".venv", "site-packages")
_TEST_DIRS = ("tests", "test", "spec", "__tests__", "testing")


@dataclass(frozen=True)
class Entry:
    path: str
    size: int


@dataclass(frozen=True)
class Candidate:
    path: str
    reason: str  # "named in the issue", "matches `save_project`", "area app", "test of app/x.py"
    rank: int  # lower first


@dataclass(frozen=True)
class Plan:
    candidates: tuple[Candidate, ...]
    conventions: tuple[str, ...]  # README / CONTRIBUTING paths, excerpts sent
    test_framework: str
    too_large: tuple[str, ...]


def is_test(path: str) -> bool:
    name = posixpath.basename(path)
    parts = path.split("/")[:-1]
    return (
        any(p in _TEST_DIRS for p in parts)
        or bool(re.match(r"(test_.*|.*_test)\.\w+$", name))
        or bool(re.search(r"\.(test|spec)\.\w+$", name))
        or name.endswith("Test.java")
        or name.endswith("_spec.rb")
    )


def _stem(path: str) -> str:
    name = posixpath.basename(path)
    stem = name.split(".")[0]
    for affix in ("test_", "_test", "_spec", "Test"):
        stem = stem.removeprefix(affix) if affix.endswith("_") else stem.removesuffix(affix)
    return stem.lower()


def _normal(word: str) -> str:
    return re.sub(r"[_\-.]", "", word).lower()


def identifiers(text: str) -> list[str]:
    """Code-looking words of the issue: backticked spans' words, snake_case, camelCase, PascalCase."""
    found: dict[str, None] = {}
    for match in _IDENT.finditer(text):
        if match[1]:
            for word in re.findall(r"[A-Za-z_][A-Za-z0-9_]{2,}", match[1]):
                found.setdefault(word, None)
        elif match[2]:
            found.setdefault(match[2], None)
    return list(found)[:30]


def tests_for(path: str, tests: Iterable[str]) -> list[str]:
    """Test files beside a source file: same stem in a test directory or with a test affix."""
    stem = _stem(path)
    if not stem:
        return []
    return sorted(t for t in tests if t != path and _stem(t) == stem)


def detect_framework(paths: set[str], manifests: dict[str, str]) -> str:
    """The repository's test framework, from its files (and manifests' text where fetched)."""
    names = {posixpath.basename(p) for p in paths}
    pyproject = manifests.get("pyproject.toml", "")
    package = manifests.get("package.json", "")
    if "conftest.py" in names or "pytest.ini" in names or "[tool.pytest" in pyproject:
        return "pytest"
    if any(re.match(r"vitest\.config\.", n) for n in names) or '"vitest"' in package:
        return "vitest"
    if any(re.match(r"jest\.config\.", n) for n in names) or '"jest"' in package:
        return "jest"
    if '"mocha"' in package or ".mocharc.yml" in names:
        return "mocha"
    if any(p.endswith("_test.go") for p in paths) or "go.mod" in names:
        return "go test"
    if "Cargo.toml" in names:
        return "cargo test"
    if any(p.endswith("_spec.rb") for p in paths):
        return "rspec"
    if "pom.xml" in names or "build.gradle" in names or "build.gradle.kts" in names:
        return "junit"
    if any(is_test(p) and p.endswith(".py") for p in paths):
        return "unittest or pytest"
    return "unknown"


def plan(
    entries: list[Entry],
    *,
    title: str,
    body: str,
    area_globs: list[str],
    notes: str = "",
) -> Plan:
    """Rank the files worth showing the builder for this issue."""
    text = sanitize(f"{title}\n{body}\n{notes}")
    by_path = {e.path: e for e in entries}
    # Secrets and credentials files never reach the builder, whatever the issue names.
    usable = {
        p for p, e in by_path.items() if _SOURCE.search(p) and not _vendored(p) and not secret_bearing(p)
    }
    tests = {p for p in usable if is_test(p)}
    chosen: dict[str, Candidate] = {}

    def add(path: str, reason: str, rank: int) -> None:
        if path in usable and path not in chosen:
            chosen[path] = Candidate(path, reason, rank)

    # 1. paths named in the issue: exact, or a unique suffix match ("save.py" → "app/storage/save.py")
    for named in dict.fromkeys(m[1].lstrip("./") for m in _PATHLIKE.finditer(text)):
        if named in usable:
            add(named, "named in the issue", 0)
            continue
        matches = [p for p in usable if p.endswith("/" + named)]
        if 0 < len(matches) <= 3:
            for p in sorted(matches):
                add(p, "named in the issue", 0)
    # 2. files whose name matches an identifier of the issue
    words = {_normal(w): w for w in identifiers(text) if len(_normal(w)) >= 4}
    for path in sorted(usable):
        stem = _normal(_stem(path))
        word = words.get(stem)
        if word:
            add(path, f"matches `{word}`", 1)
    # 3. the affected area
    for path in sorted(usable, key=lambda p: (is_test(p), p.count("/"), p)):
        if any(fnmatch.fnmatchcase(path, g) for g in area_globs):
            add(path, "in the affected area", 2)
    # tests beside every source candidate, just after it
    ranked = sorted(chosen.values(), key=lambda c: (c.rank, c.path))
    result: list[Candidate] = []
    for candidate in ranked:
        result.append(candidate)
        if not is_test(candidate.path):
            for test in tests_for(candidate.path, tests):
                if test not in chosen:
                    chosen[test] = Candidate(test, f"test of {candidate.path}", candidate.rank)
                    result.append(chosen[test])
    too_large = tuple(c.path for c in result if by_path[c.path].size > MAX_FILE_BYTES)
    kept = [c for c in result if by_path[c.path].size <= MAX_FILE_BYTES][:MAX_CANDIDATES]
    conventions = tuple(p for p in _CONVENTIONS if p in by_path)[:2]
    return Plan(tuple(kept), conventions, detect_framework(set(by_path), {}), too_large)


def _vendored(path: str) -> bool:
    parts = path.split("/")
    return any(p in _VENDORED for p in parts) or path.endswith((".min.js", ".lock", "-lock.json", ".map"))
