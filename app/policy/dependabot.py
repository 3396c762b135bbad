"""Dependabot pull requests: is it really Dependabot, what does it update, may it merge itself? Pure.

Authenticity (DESIGN §5.6) is decided from data GitHub reports about the PR, never from its text:
the author is `dependabot[bot]` of type Bot, the head branch is in the same repository under
`dependabot/`, and every commit is authored by Dependabot **and** committed by GitHub for it
(`web-flow`) with a signature GitHub verified, so an author e-mail set by any pusher proves
nothing; nothing under `.github/` changes.

The update's metadata comes from the `updated-dependencies` YAML block Dependabot writes into its
commit message, then from the title and body; the semver level is computed from the versions when
the block lacks it, and a grouped update takes its highest level. Below 1.0.0 the code decides from
the versions whatever the metadata says (semver §4: anything may change before 1.0): `0.y` → `0.z`
and `0.0.x` → `0.0.y` are major. Whatever the PR's text says, only this parse and the repository's
policy decide.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field

from app.events import Commit, PullRequest
from app.policy.diff import FileDiff
from app.policy.markdown import neutral
from app.policy.repo_policy import Dependabot as DependabotPolicy

DEPENDABOT = "dependabot[bot]"
GITHUB_COMMITTER = "web-flow"  # GitHub commits (and signs) for Dependabot as web-flow
Level = Literal["patch", "minor", "major", "unknown"]
DepType = Literal["production", "development", "indirect", "unknown"]
_LEVELS: tuple[Level, ...] = ("patch", "minor", "major", "unknown")  # ascending risk


@dataclass(frozen=True)
class Dependency:
    name: str
    old: str | None
    new: str | None
    level: Level
    type: DepType = "unknown"


@dataclass(frozen=True)
class Update:
    dependencies: tuple[Dependency, ...]
    ecosystem: str | None
    directory: str | None
    group: str | None
    security: bool

    @property
    def level(self) -> Level:
        """The highest level of the update (a group is as risky as its riskiest member)."""
        if not self.dependencies:
            return "unknown"
        return max((d.level for d in self.dependencies), key=_LEVELS.index)

    def describe(self) -> str:
        parts = [f"`{d.name}` {d.old or '?'} → {d.new or '?'} ({d.level})" for d in self.dependencies[:20]]
        return ", ".join(parts) or "no dependency recognised"


# ---- authenticity ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Authenticity:
    genuine: bool
    reason: str


def authentic(pr: PullRequest, commits: list[Commit], files: list[FileDiff]) -> Authenticity:
    if pr.user is None or pr.user.login != DEPENDABOT or pr.user.type != "Bot":
        return Authenticity(False, "the author is not the dependabot[bot] App")
    if not pr.from_this_repository:
        return Authenticity(False, "the head branch is not in this repository")
    if not pr.head.ref.startswith("dependabot/"):
        return Authenticity(False, "the head branch is not under dependabot/")
    if not commits:
        return Authenticity(False, "no commits listed")
    for commit in commits:
        sha = commit.sha[:7]
        if commit.author is None or commit.author.login != DEPENDABOT:
            return Authenticity(False, f"commit {sha} is not authored by Dependabot")
        if commit.committer is None or commit.committer.login != GITHUB_COMMITTER:
            return Authenticity(False, f"commit {sha} was not committed by GitHub for Dependabot")
        if not commit.verified:
            return Authenticity(False, f"commit {sha} does not carry a signature GitHub verified")
    for changed in files:
        for path in (changed.path, changed.previous_path):
            if path is not None and path.startswith(".github/"):
                return Authenticity(False, f"it changes {path}")
    return Authenticity(True, "genuine Dependabot update")


# ---- metadata ----------------------------------------------------------------------------------

_VERSION = re.compile(r"(\d+)(?:\.(\d+))?(?:\.(\d+))?")
_BUMP = re.compile(
    r"(?:Bump|Update)\s+(?P<name>\S+?)(?:\s+requirement)?\s+from\s+(?P<old>(?:[~^<>=!]+\s*)?\S+)"
    r"\s+to\s+(?P<new>(?:[~^<>=!]+\s*)?\S+?)"
    r"(?:\s+in\s+(?P<dir>\S+))?\s*$",
    re.I,
)
_GROUP = re.compile(r"Bump the (?P<group>\S+) group", re.I)
_UPDATES_LINE = re.compile(r"^\s*Updates? `(?P<name>[^`]+)` from (?P<old>\S+) to (?P<new>\S+?)\.?\s*$", re.M)
_BLOCK = re.compile(r"^---\s*\nupdated-dependencies:\s*\n(?P<body>.*?)^\.\.\.\s*$", re.M | re.S)
_SECURITY_SENTENCES = (
    "this update includes a security fix",
    "this update includes security fixes",
    "fixes a security vulnerability",
)


def semver_level(old: str | None, new: str | None) -> Level:
    """The update's level from two version strings (`^1.2.3`, `~> 2.0`, `v3`, `>=1.0,<2` …)."""
    a, b = _VERSION.search(old or ""), _VERSION.search(new or "")
    if a is None or b is None:
        return "unknown"
    x = [int(p) if p is not None else 0 for p in a.groups()]
    y = [int(p) if p is not None else 0 for p in b.groups()]
    if x[0] != y[0]:
        return "major"
    if x[1] != y[1]:
        return "major" if x[0] == 0 else "minor"
    if x[2] != y[2]:
        return "major" if x[0] == 0 and x[1] == 0 else "patch"
    return "patch"


def _below_one(version: str | None) -> bool:
    found = _VERSION.search(version or "")
    return found is not None and int(found[1]) == 0


def level_of(metadata: Level | None, old: str | None, new: str | None) -> Level:
    """The level that decides: below 1.0.0 the versions' (code's) reading wins over Dependabot's
    `update-type`, which calls 0.3 → 0.4 a minor update; elsewhere the metadata, then the versions."""
    computed = semver_level(old, new)
    if not (_below_one(old) or _below_one(new)):
        return metadata or computed
    if computed != "unknown":
        return computed
    found = _VERSION.search(new or "")  # the old version is not known: read the new one alone
    if found is None:
        return "unknown"
    if found[2] is None or int(found[2]) == 0:
        return "major"  # 0.0.x: every change may break
    if metadata in ("minor", "major"):
        return "major"  # a 0.y change
    return metadata or "unknown"


def _dep_type(value: object) -> DepType:
    text = str(value or "")
    if text.startswith("indirect"):
        return "indirect"
    if text.endswith("development"):
        return "development"
    if text.endswith("production"):
        return "production"
    return "unknown"


def _level_of(update_type: object) -> Level | None:
    match = re.search(r"semver-(patch|minor|major)", str(update_type or ""))
    return match[1] if match else None  # type: ignore[return-value]


def parse(title: str, body: str, commit_message: str, branch: str) -> Update:
    """What the PR updates, from Dependabot's commit block first, then the title and the body."""
    versions: dict[str, tuple[str | None, str | None]] = {}
    for match in _UPDATES_LINE.finditer(body or ""):
        versions[match["name"]] = (match["old"], match["new"].rstrip("."))
    title_match = _BUMP.search((title or "").replace("[Security] ", "").strip())
    directory = None
    if title_match:
        versions.setdefault(title_match["name"], (title_match["old"], title_match["new"]))
        directory = title_match["dir"]
    dependencies: list[Dependency] = []
    block = _BLOCK.search(commit_message or "")
    listed: list[dict[str, Any]] = []
    if block:
        try:
            loaded = yaml.safe_load(block["body"])
        except yaml.YAMLError:
            loaded = None
        if isinstance(loaded, list):
            listed = [d for d in loaded if isinstance(d, dict) and d.get("dependency-name")]
    for item in listed:
        name = str(item["dependency-name"])
        old, new = versions.get(name, (None, None))
        new = str(item.get("dependency-version") or new or "") or None
        level = level_of(_level_of(item.get("update-type")), old, new)
        dependencies.append(Dependency(name, old, new, level, _dep_type(item.get("dependency-type"))))
    known = {d.name for d in dependencies}
    for name, (old, new) in versions.items():
        if name not in known:
            dependencies.append(Dependency(name, old, new, level_of(None, old, new)))
    group = _GROUP.search(title or "")
    parts = (branch or "").split("/")
    text = f"{title}\n{body}".lower()
    return Update(
        dependencies=tuple(dependencies),
        ecosystem=parts[1] if len(parts) > 2 and parts[0] == "dependabot" else None,
        directory=directory,
        group=group["group"] if group else None,
        security=(title or "").startswith("[Security]") or any(s in text for s in _SECURITY_SENTENCES),
    )


# ---- the decision ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    auto_merge: bool
    rule: str  # the rule that made the decision, for the comment
    summarise: bool  # an AI risk summary for the human (majors, critical packages, security)
    labels: tuple[str, ...] = field(default=())


def decide(update: Update, rules: DependabotPolicy) -> Decision:
    critical = {c.lower() for c in rules.critical}
    hits = sorted(d.name for d in update.dependencies if d.name.lower() in critical)
    labels = ("security",) if update.security else ()
    level = update.level
    if not update.dependencies:
        return Decision(
            False, "the update could not be parsed, so it is not merged automatically", False, labels
        )
    if hits:
        return Decision(
            False,
            f"`{', '.join(hits)}` is listed in `dependabot.critical`",
            True,
            (*labels, "autopack:needs-review"),
        )
    if level == "unknown":
        return Decision(
            False, "the versions do not show the update's level", True, (*labels, "autopack:needs-review")
        )
    if level not in rules.auto_merge_levels:
        return Decision(
            False,
            f"a {level} update is outside `dependabot.auto_merge_levels` "
            f"({', '.join(rules.auto_merge_levels)})",
            level == "major" or update.security,
            (*labels, "autopack:needs-review"),
        )
    types = {d.type for d in update.dependencies}
    outside = sorted(t for t in types if t != "unknown" and t not in rules.dependency_types)
    if outside:
        return Decision(
            False,
            f"{', '.join(outside)} dependencies are outside `dependabot.dependency_types`",
            update.security,
            (*labels, "autopack:needs-review"),
        )
    return Decision(True, f"a {level} update within `dependabot.auto_merge_levels`", update.security, labels)


# ---- the risk summary a model writes, and the comment ------------------------------------------


class BreakingChange(BaseModel):
    change: str = Field(max_length=300, description="What changed, with the version that changed it.")
    affects_this_repository: Literal["yes", "no", "unknown"]
    where: str = Field(max_length=200, description="Files of this repository it touches, or empty.")


class RiskSummary(BaseModel):
    summary: str = Field(max_length=600, description="Two sentences for the maintainer.")
    breaking_changes: list[BreakingChange] = Field(max_length=8)
    migration_steps: list[str] = Field(max_length=6)
    security_fixes: list[str] = Field(max_length=5)
    recommendation: Literal["merge", "review_carefully", "hold"]


def versions_key(update: Update) -> str:
    """What a risk summary is about: the same versions rebased keep their summary."""
    return ";".join(sorted(f"{d.name}@{d.new}" for d in update.dependencies))[:500]


def render_withdrawn(head: str, reason: str) -> str:
    """The comment when a PR Autopack had approved stops being a genuine Dependabot update."""
    return (
        f"**Autopack dependency update:** not merged. At `{head[:7]}` this is no longer a genuine "
        f"Dependabot update ({neutral(reason)}), so Autopack withdrew its approval and auto-merge. "
        "A human reviews it like any other pull request."
    )


def render_comment(
    update: Update, decision: Decision, state: str, summary: RiskSummary | None, model: str | None
) -> str:
    """The one Autopack comment on a Dependabot PR: decision, the rule that made it, CI state, and the
    risk summary (model text neutralised; its recommendation is advice, never the decision)."""
    verdict = "merges automatically" if decision.auto_merge else "needs a human review"
    lines = [
        f"**Autopack dependency update:** {update.describe()} — {verdict}.",
        "",
        f"- rule: {decision.rule}",
        f"- state: {state}",
    ]
    if update.security:
        lines.append("- security update")
    if update.group:
        lines.append(f"- group `{neutral(update.group)}`, level {update.level}")
    if summary is not None:
        lines += [
            "",
            f"**Risk summary** (by `{model}`; advice, not the decision): {neutral(summary.summary)}",
        ]
        if summary.breaking_changes:
            lines += ["", "Breaking changes:"]
            lines += [
                f"- {neutral(b.change)} — affects this repository: **{b.affects_this_repository}**"
                + (f" ({neutral(b.where)})" if b.where else "")
                for b in summary.breaking_changes
            ]
        if summary.migration_steps:
            lines += ["", "Migration steps:", *[f"1. {neutral(s)}" for s in summary.migration_steps]]
        if summary.security_fixes:
            lines += ["", "Security fixes:", *[f"- {neutral(s)}" for s in summary.security_fixes]]
        lines += ["", f"Recommendation: **{summary.recommendation.replace('_', ' ')}**"]
    return "\n".join(lines)
