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


@dataclass(frozen=True)
class Flag:
    """Not refused, but the human must see it: a new dependency or an install hook."""

    kind: str  # "dependency" | "install_hook"
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


def path_problem(path: str) -> str | None:
    """Why a path can never be written by the bot (outside the repository or inside `.git`)."""
    if not path or path != path.strip() or "\x00" in path or "\\" in path:
        return "not a plain repository path"
    if path.startswith("/") or re.match(r"^[A-Za-z]:", path):
        return "absolute path"
    parts = path.split("/")
    if ".." in parts or "." in parts or "" in parts:
        return "path leaves the repository or is not normalised"
    if posixpath.normpath(path) != path:
        return "path is not normalised"
    if any(p.lower() == ".git" for p in parts):
        return "inside .git/"
    return None


def _allowed(path: str, allow: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(path, glob) for glob in allow)


def _protected(path: str) -> tuple[str, str] | None:
    name = posixpath.basename(path)
    if path in _CODEOWNERS:
        return "protected.codeowners", "CODEOWNERS decides who reviews; the bot does not change it"
    if path in _BOT_CONFIG:
        return "protected.bot_config", "Autopack's own policy is the maintainers' to change"
    if path.startswith(".github/"):
        return "protected.github", "files under .github/ steer automation and the repository's settings"
    if any(fnmatch.fnmatchcase(name, g) for g in _SECRET_GLOBS):
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
    total_lines = 0
    symlinked_dirs = {p for p, m in modes.items() if m in (SYMLINK_MODE, SUBMODULE_MODE)}
    for path, new in changed.items():
        problem = path_problem(path)
        if problem:
            violations.append(Violation("path.outside", path, problem))
            continue
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
        parents = ["/".join(path.split("/")[:i]) for i in range(1, path.count("/") + 1)]
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
    flags = [f for path, new in changed.items() for f in dependency_flags(path, base.get(path), new)]
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
