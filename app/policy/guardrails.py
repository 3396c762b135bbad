"""What the bot may commit (DESIGN §5.3). Pure: the final change and the base tree in, violations out.

Checked on the final change set, after every edit applied, so no sequence of edits can end outside
the rules. Each violation names its rule, so the refusal comment tells a maintainer exactly which
line of the policy was in the way. Some things are not violations but must reach the human: new
dependencies and install hooks are listed in the pull request's body.
"""

from __future__ import annotations

import difflib
import fnmatch
import json
import posixpath
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass

from app.policy.repo_policy import Guardrails

SYMLINK_MODE = "120000"
SUBMODULE_MODE = "160000"

# Protected paths: refused unless `guardrails.allow_paths` names them (workflows never: the App does
# not hold the `workflows` permission, by design, so no policy can grant it).
_WORKFLOWS = ".github/workflows/"
_CODEOWNERS = ("CODEOWNERS", ".github/CODEOWNERS", "docs/CODEOWNERS")
_BOT_CONFIG = (".github/autopack.yml", ".github/autopack.yaml", ".autopack.yml")
_SECRET_GLOBS = (
    ".env",
    ".env.*",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "*.jks",
    "*.keystore",
    "id_rsa*",
    "id_ed25519*",
    "id_ecdsa*",
    ".npmrc",
    ".pypirc",
    ".netrc",
    ".dockercfg",
    "credentials",
    "credentials.*",
    "secrets.*",
    "*.secrets",
    ".git-credentials",
)
_BINARY_SUFFIXES = {
    ".png", ".jpg", ".jpeg", ".gif", ".ico", ".webp", ".bmp", ".pdf", ".zip", ".gz", ".tgz", ".bz2",
    ".xz", ".7z", ".jar", ".war", ".class", ".so", ".dll", ".dylib", ".exe", ".bin", ".o", ".a",
    ".pyc", ".whl", ".woff", ".woff2", ".ttf", ".otf", ".mp3", ".mp4", ".mov", ".sqlite", ".db",
}  # fmt: skip


@dataclass(frozen=True)
class Violation:
    rule: str  # e.g. "path.workflow"
    path: str
    message: str

    def __str__(self) -> str:
        return f"`{self.rule}` — `{self.path}`: {self.message}"


# Files that run code in CI or when the project is built or installed: a change to them would run
# with the repository's secrets before anyone has reviewed it. Refused unless allowed, always listed.
_EXECUTES_NAMES = frozenset(
    {
        "conftest.py", "noxfile.py", "tox.ini", "setup.py", "pytest.ini", "Makefile", "makefile",
        "GNUmakefile", "Rakefile", "Gemfile", "Justfile", "justfile", "Taskfile.yml", "Taskfile.yaml",
        "build.gradle", "build.gradle.kts", "settings.gradle", "settings.gradle.kts", "gradlew", "mvnw",
        "pom.xml", "build.rs", "build.sbt", "CMakeLists.txt", "meson.build", "Dockerfile", "Containerfile",
        "Jenkinsfile", ".pre-commit-config.yaml", ".gitlab-ci.yml", ".travis.yml", "azure-pipelines.yml",
        "bitbucket-pipelines.yml", ".drone.yml", "appveyor.yml", "Earthfile", "Vagrantfile",
    }
)  # fmt: skip
_EXECUTES_GLOBS = (
    "*.mk", "*.gemspec", "*.config.js", "*.config.cjs", "*.config.mjs", "*.config.ts", ".eslintrc.js",
    ".eslintrc.cjs", ".babelrc.js", "*.cmake", ".circleci/*", ".buildkite/*", ".husky/*",
)  # fmt: skip
_PYPROJECT_EXECUTES = (
    "build-system",
    "tool.setuptools",
    "tool.hatch",
    "tool.pytest",
    "tool.poe",
    "tool.taskipy",
)


def executes(path: str, old: str | None, new: str | None) -> str | None:
    """Why a change to this file runs code in CI or at build/install time, or None."""
    name = posixpath.basename(path)
    if name in _EXECUTES_NAMES or any(
        fnmatch.fnmatchcase(path, g) or fnmatch.fnmatchcase(name, g) for g in _EXECUTES_GLOBS
    ):
        return "runs in CI or when the project is built or installed"
    if name == "package.json" and _json_section(old, "scripts") != _json_section(new, "scripts"):
        return "its npm scripts run in CI and at install"
    if name == "pyproject.toml":
        changed = [t for t in _PYPROJECT_EXECUTES if _toml_section(old, t) != _toml_section(new, t)]
        if changed:
            return f"`[{changed[0]}]` configures what runs at build or test time"
    return None


def _json_section(text: str | None, key: str) -> object:
    try:
        data = json.loads(text or "{}")
    except ValueError:
        return None
    return data.get(key) if isinstance(data, dict) else None


def _toml_section(text: str | None, dotted: str) -> object:
    try:
        node: object = tomllib.loads(text or "")
    except tomllib.TOMLDecodeError:
        return None
    for key in dotted.split("."):
        node = node.get(key) if isinstance(node, dict) else None
    return node


@dataclass(frozen=True)
class Flag:
    """Not refused, but the human must see it: a new dependency, an install hook, a file that runs."""

    kind: str  # "dependency" | "install_hook" | "executes"
    path: str
    detail: str


@dataclass(frozen=True)
class Report:
    violations: tuple[Violation, ...]
    flags: tuple[Flag, ...]
    files: int
    changed_lines: int

    @property
    def ok(self) -> bool:
        return not self.violations


# Code points HFS+ ignores when it compares names, so `.g\u200cit` is `.git` there (git's
# `is_hfs_dotgit`): zero-width non-joiner/joiner, bidi marks and embeddings, the BOM and others.
_HFS_IGNORED = frozenset(
    "\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u206a\u206b\u206c\u206d\u206e\u206f\ufeff"
)
_NTFS_SHORT_GIT = re.compile(r"git~\d+", re.IGNORECASE)  # the 8.3 short name NTFS gives `.git`


def is_dotgit(component: str) -> bool:
    """Whether a path component names `.git` on some file system git checks out to (git's
    `verify_path` with core.protectNTFS and core.protectHFS): any case, HFS+-ignored code points,
    NTFS trailing dots and spaces, alternate data streams and the `GIT~1` short name."""
    name = "".join(ch for ch in component if ch not in _HFS_IGNORED).lower()
    name = name.split(":", 1)[0].rstrip(". ")
    return name == ".git" or bool(_NTFS_SHORT_GIT.fullmatch(name))


def path_problem(path: str) -> str | None:
    """Why a path can never be written by the bot: outside the repository, inside `.git` under any
    file system's reading of the name, or a name git refuses to check out (git's `verify_path`)."""
    if not path or path != path.strip() or "\\" in path or any(ord(ch) < 0x20 for ch in path):
        return "not a plain repository path"
    if path.startswith("/") or re.match(r"^[A-Za-z]:", path):
        return "absolute path"
    parts = path.split("/")
    if ".." in parts or "." in parts or "" in parts:
        return "path leaves the repository or is not normalised"
    if posixpath.normpath(path) != path:
        return "path is not normalised"
    if any(is_dotgit(p) for p in parts):
        return "inside .git/ (as NTFS or HFS+ would read the name)"
    if any(":" in p for p in parts):
        return "a colon: an NTFS alternate data stream or drive"
    if any(p.endswith((".", " ")) for p in parts):
        return "a name ending in a dot or space, which NTFS strips (it would alias another file)"
    return None


def secret_bearing(path: str) -> bool:
    """A secrets or credentials file by its name (`.env`, keys, `.npmrc`, `credentials.*`, …)."""
    name = posixpath.basename(path)
    return any(fnmatch.fnmatchcase(name, g) for g in _SECRET_GLOBS)


def _allowed(path: str, allow: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(path, glob) for glob in allow)


def _protected(path: str) -> tuple[str, str] | None:
    if path in _CODEOWNERS:
        return "protected.codeowners", "CODEOWNERS decides who reviews; the bot does not change it"
    if path in _BOT_CONFIG:
        return "protected.bot_config", "Autopack's own policy is the maintainers' to change"
    if path.startswith(".github/"):
        return "protected.github", "files under .github/ steer automation and the repository's settings"
    if secret_bearing(path):
        return "protected.secrets", "a secrets or credentials file"
    return None


def _lines_changed(old: str | None, new: str | None) -> int:
    a = (old or "").splitlines()
    b = (new or "").splitlines()
    changed = 0
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag != "equal":
            changed += max(i2 - i1, j2 - j1)
    return changed


def check(
    changed: Mapping[str, str | None],
    base: Mapping[str, str | None],
    modes: Mapping[str, str],
    rules: Guardrails,
) -> Report:
    """`changed`: path → new content (None: deleted); `base`: the same paths at the base commit;
    `modes`: the base tree's file modes (symlinks, submodules) for every path in it."""
    violations: list[Violation] = []
    flags: list[Flag] = []
    total_lines = 0
    symlinked_dirs = {p for p, m in modes.items() if m in (SYMLINK_MODE, SUBMODULE_MODE)}
    directories = {"/".join(p.split("/")[:i]) for p in modes for i in range(1, p.count("/") + 1)}
    for path, new in changed.items():
        problem = path_problem(path)
        if problem:
            violations.append(Violation("path.outside", path, problem))
            continue
        if new is not None and path in directories:
            violations.append(
                Violation("path.directory", path, "a directory of the base tree; a file would replace it")
            )
        parents = ["/".join(path.split("/")[:i]) for i in range(1, path.count("/") + 1)]
        under_file = next((p for p in parents if p in modes and changed.get(p, "") is not None), None)
        if new is not None and under_file and modes.get(under_file) not in (SYMLINK_MODE, SUBMODULE_MODE):
            violations.append(Violation("path.directory", path, f"`{under_file}` is a file in the base tree"))
        why = executes(path, base.get(path), new)
        if why:
            flags.append(Flag("executes", path, why))
            if not _allowed(path, rules.allow_paths):
                violations.append(
                    Violation(
                        "file.executes",
                        path,
                        f"{why}, with the repository's secrets, before anyone reviews it "
                        "(allow it with guardrails.allow_paths)",
                    )
                )
        if path.startswith(_WORKFLOWS):
            violations.append(Violation("path.workflow", path, "workflow files are never changed by the bot"))
            continue
        protected = _protected(path)
        if protected and not _allowed(path, rules.allow_paths):
            violations.append(
                Violation(protected[0], path, f"{protected[1]} (allow it with guardrails.allow_paths)")
            )
        mode = modes.get(path)
        if mode in (SYMLINK_MODE, SUBMODULE_MODE):
            kind = "symlink" if mode == SYMLINK_MODE else "submodule"
            violations.append(Violation("file.symlink", path, f"the path is a {kind}; it is never changed"))
        linked = next((p for p in parents if p in symlinked_dirs), None)
        if linked:
            violations.append(Violation("file.symlink", path, f"`{linked}` is a symlink or submodule"))
        if new is not None:
            if "\x00" in new or posixpath.splitext(path)[1].lower() in _BINARY_SUFFIXES:
                violations.append(Violation("file.binary", path, "binary files are never changed"))
            size = len(new.encode("utf-8", errors="replace"))
            if size > rules.max_file_bytes:
                violations.append(
                    Violation(
                        "size.file",
                        path,
                        f"{size:,} bytes after the change; the limit is {rules.max_file_bytes:,} "
                        "(guardrails.max_file_bytes)",
                    )
                )
        total_lines += _lines_changed(base.get(path), new)
    if len(changed) > rules.max_files:
        violations.append(
            Violation(
                "size.files",
                "(change)",
                f"{len(changed)} files changed; the limit is {rules.max_files} (guardrails.max_files)",
            )
        )
    if total_lines > rules.max_changed_lines:
        violations.append(
            Violation(
                "size.lines",
                "(change)",
                f"{total_lines:,} lines changed; the limit is {rules.max_changed_lines:,} "
                "(guardrails.max_changed_lines)",
            )
        )
    flags += [f for path, new in changed.items() for f in dependency_flags(path, base.get(path), new)]
    return Report(tuple(violations), tuple(flags), len(changed), total_lines)


# ---- dependencies and install hooks ------------------------------------------------------------

_REQ_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_INSTALL_SCRIPTS = ("preinstall", "install", "postinstall", "prepare", "prepublish")


def _requirement_names(lines: list[str]) -> set[str]:
    names = set()
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        match = _REQ_NAME.match(line)
        if match:
            names.add(match[1].lower().replace("_", "-"))
    return names


def _package_json(text: str | None) -> tuple[set[str], dict[str, str]]:
    try:
        data = json.loads(text or "{}")
    except ValueError:
        return set(), {}
    if not isinstance(data, dict):
        return set(), {}
    deps: set[str] = set()
    for key in ("dependencies", "devDependencies", "optionalDependencies", "peerDependencies"):
        section = data.get(key)
        if isinstance(section, dict):
            deps.update(section)
    scripts = data.get("scripts") if isinstance(data.get("scripts"), dict) else {}
    hooks = {k: str(v) for k, v in (scripts or {}).items() if k in _INSTALL_SCRIPTS}
    return deps, hooks


def _pyproject(text: str | None) -> set[str]:
    try:
        data = tomllib.loads(text or "")
    except tomllib.TOMLDecodeError:
        return set()
    project = data.get("project") or {}
    specs = list(project.get("dependencies") or [])
    for group in (project.get("optional-dependencies") or {}).values():
        specs.extend(group)
    names = _requirement_names([str(s) for s in specs])
    poetry = ((data.get("tool") or {}).get("poetry") or {}).get("dependencies") or {}
    names.update(str(k).lower() for k in poetry if k != "python")
    return names


def _cargo(text: str | None) -> set[str]:
    try:
        data = tomllib.loads(text or "")
    except tomllib.TOMLDecodeError:
        return set()
    names: set[str] = set()
    for key in ("dependencies", "dev-dependencies", "build-dependencies"):
        names.update((data.get(key) or {}).keys())
    return names


def _go_mod(text: str | None) -> set[str]:
    return set(re.findall(r"^\s*(?:require\s+)?([a-z0-9.-]+\.[a-z]+/[^\s]+)\s+v", text or "", re.M))


def _gemfile(text: str | None) -> set[str]:
    return set(re.findall(r"""^\s*gem\s+['"]([^'"]+)['"]""", text or "", re.M))


def dependency_flags(path: str, old: str | None, new: str | None) -> list[Flag]:
    """New dependencies and install hooks a change adds to a manifest it edits."""
    name = posixpath.basename(path)
    flags: list[Flag] = []
    added: set[str] = set()
    if name == "package.json":
        (old_deps, old_hooks), (new_deps, new_hooks) = _package_json(old), _package_json(new)
        added = new_deps - old_deps
        for hook, command in new_hooks.items():
            if old_hooks.get(hook) != command:
                flags.append(Flag("install_hook", path, f"npm `{hook}` script: {command[:120]}"))
    elif re.fullmatch(r"requirements.*\.(txt|in)", name):
        added = _requirement_names((new or "").splitlines()) - _requirement_names((old or "").splitlines())
    elif name == "pyproject.toml":
        added = _pyproject(new) - _pyproject(old)
    elif name == "Cargo.toml":
        added = _cargo(new) - _cargo(old)
    elif name == "go.mod":
        added = _go_mod(new) - _go_mod(old)
    elif name == "Gemfile":
        added = _gemfile(new) - _gemfile(old)
    elif (name in ("setup.py", "setup.cfg", "build.rs", "install.sh") or name.endswith(".gemspec")) and (
        new is not None and new != old
    ):
        flags.append(Flag("install_hook", path, "code that runs when the package is built or installed"))
    flags.extend(Flag("dependency", path, dep) for dep in sorted(added))
    return flags
