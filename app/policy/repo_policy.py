"""The per-repository policy file `.github/autopack.yml`: schema, parsing, merging. Pure.

Every section exists from the start and forbids unknown keys, so a typo is an error, not a silently
ignored setting; later features add their keys to their section. Errors carry the YAML line of the
offending key, so the check run a maintainer sees points at it. `_extends` names a file to inherit
(Probot's convention); it is resolved by the loader (`app.github.policy_loader`), which deep-merges
`defaults ← extended file ← this file` with `merge()`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from app.policy.digest import check_schedule

FILE_PATH = ".github/autopack.yml"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _yaml_mode(value: Any) -> Any:
    """YAML 1.1 reads a bare `off` as false (and `on` as true): they mean the words."""
    if value is False:
        return "off"
    if value is True:
        return "act"
    return value


# act: the flow writes to GitHub. shadow: it runs to its decision (models called, budgets spent) and
# records what it would have written, writing nothing. off: it does not run, commands included.
Mode = Annotated[Literal["act", "shadow", "off"], BeforeValidator(_yaml_mode)]


class Feedback(_Section):
    mode: Mode = "act"
    label: str = Field(default="user-feedback", min_length=1, max_length=50)
    rate_limit_per_day: int = Field(default=5, ge=0, le=1000)  # triages per reporter and day
    max_body_chars: int = Field(default=20_000, ge=100, le=200_000)
    triage_on_edit: bool = False
    close_duplicates: bool = False
    areas: dict[str, list[str]] = Field(default_factory=dict)  # area name → path globs

    @field_validator("areas")
    @classmethod
    def _globs_present(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for name, globs in value.items():
            if not globs:
                raise ValueError(f"area {name!r} needs at least one path glob")
        return value


class Proposals(_Section):
    mode: Mode = "act"
    auto: bool = False  # propose by itself when triage finds an improvement warranted
    min_confidence: float = Field(default=0.8, ge=0, le=1)
    max_rounds: int = Field(default=3, ge=1, le=10)  # the first change and its revisions, then humans
    no_ci_minutes: int = Field(default=15, ge=1, le=1_440)  # no check at all by then: "no CI"
    ci_timeout_minutes: int = Field(default=120, ge=5, le=2_880)  # checks still running: unverified
    reviewers: list[str] = Field(default_factory=list)  # requested when the PR is ready
    team_reviewers: list[str] = Field(default_factory=list)
    context_tokens: int = Field(default=40_000, ge=2_000, le=50_000)  # repository files for the builder
    # The Actions environment with required reviewers that gates CI on `autopack/*` branches;
    # Autopack checks it exists and says so in the pull request when it does not.
    ci_environment: str = Field(default="autopack", min_length=1, max_length=100, pattern=r"^[\w.-]+$")


class Audit(_Section):
    mode: Mode = "act"
    enabled: bool = True
    auto: Literal["bot_prs", "all", "off"] = "bot_prs"  # which PRs are audited without being asked
    # Accounts whose pull requests `bot_prs` audits besides GitHub Apps and the Copilot agent (an
    # agent working under a user account, say).
    bot_authors: list[str] = Field(default_factory=list, max_length=100)
    min_severity: Literal["critical", "high", "medium", "low", "info"] = "low"
    min_confidence: float = Field(default=0.5, ge=0, le=1)
    max_line_comments: int = Field(default=10, ge=0, le=50)
    categories: dict[
        Literal["security_auth_change", "schema_contract_change", "external_feature_reuse", "docs", "tests"],
        list[str],
    ] = Field(default_factory=dict)  # extra path globs per category


class Dependabot(_Section):
    mode: Mode = "act"
    enabled: bool = True
    # Levels that may merge themselves once checks are green (majors only if listed here).
    auto_merge_levels: list[Literal["patch", "minor", "major"]] = Field(default=["patch", "minor"])
    dependency_types: list[Literal["production", "development", "indirect"]] = Field(
        default=["production", "development", "indirect"]
    )
    critical: list[str] = Field(default_factory=list)  # never auto-merged, always summarised
    # No check at all is "not yet", never green: wait this long for CI, then leave it for a human.
    # Off: a repository without CI merges updates on policy alone (a deliberate choice).
    require_checks: bool = True
    ci_timeout_minutes: int = Field(default=60, ge=5, le=2_880)
    security_reviewers: list[str] = Field(default_factory=list)  # requested on security updates
    security_team_reviewers: list[str] = Field(default_factory=list)


class Push(_Section):
    mode: Mode = "act"
    enabled: bool = True
    branches: list[str] = Field(default_factory=list)  # globs of branches audited besides the default
    risk_threshold: int = Field(default=60, ge=0, le=100)  # risk score that gets the routed audit
    audit_categories: list[
        Literal["security_auth_change", "schema_contract_change", "external_feature_reuse", "docs", "tests"]
    ] = Field(default=["security_auth_change"])  # categories audited whatever the score
    secrets_allow_paths: list[str] = Field(default_factory=list)  # globs of fixtures with fake secrets
    model_globs: list[str] = Field(default=["**/models.y*ml", "models.y*ml"])  # model configs checked


class Guardrails(_Section):
    allow_paths: list[str] = Field(default_factory=list)  # protected paths the bot may change
    max_files: int = Field(default=20, ge=1, le=200)
    max_changed_lines: int = Field(default=800, ge=10, le=20_000)
    max_file_bytes: int = Field(default=200_000, ge=1_000, le=1_000_000)


class Merge(_Section):
    method: Literal["merge", "squash", "rebase"] = "squash"
    required_approvals: int = Field(default=1, ge=1, le=10)
    reporter_can_approve: bool = False
    delete_branch: bool = True


class Digest(_Section):
    enabled: bool = True
    schedule: str = "MON 06:00"  # day and UTC time of the weekly digest
    auto_propose: int = Field(default=0, ge=0, le=5)  # start proposals for the top N themes

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str) -> str:
        return check_schedule(value)


class Budgets(_Section):
    repository_weekly_tokens: int | None = Field(default=None, gt=0)


class RepoPolicy(_Section):
    feedback: Feedback = Field(default_factory=Feedback)
    proposals: Proposals = Field(default_factory=Proposals)
    audit: Audit = Field(default_factory=Audit)
    dependabot: Dependabot = Field(default_factory=Dependabot)
    push: Push = Field(default_factory=Push)
    guardrails: Guardrails = Field(default_factory=Guardrails)
    merge: Merge = Field(default_factory=Merge)
    digest: Digest = Field(default_factory=Digest)
    budgets: Budgets = Field(default_factory=Budgets)


DEFAULTS = RepoPolicy()


@dataclass(frozen=True)
class PolicyProblem:
    """One error in a policy file: where (path and line) and what."""

    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        return f"{where}{self.path}: {self.message}"


class PolicyError(Exception):
    def __init__(self, source: str, problems: list[PolicyProblem]) -> None:
        super().__init__("; ".join(f"{source}: {p}" for p in problems))
        self.source = source
        self.problems = problems


@dataclass(frozen=True)
class Extends:
    """Where `_extends` points: a repository of the same owner (or another), and a file in it."""

    owner: str
    repo: str
    path: str


def parse_extends(value: object, owner: str) -> Extends:
    """Probot's forms: `repo`, `owner/repo`, `repo:path.yml`, `owner/repo:path.yml`."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError("_extends must be a repository name like `.github` or `owner/repo:path.yml`")
    target, _, path = value.strip().partition(":")
    repo_owner, _, repo = target.rpartition("/")
    path = path or FILE_PATH
    if not repo or ".." in path.split("/") or path.startswith("/"):
        raise ValueError(f"_extends: cannot use {value!r}")
    return Extends(repo_owner or owner, repo, path)


def _lines(text: str) -> dict[tuple[str, ...], int]:
    """YAML path → 1-based line of its key, for error messages."""
    lines: dict[tuple[str, ...], int] = {}

    def walk(node: yaml.Node, path: tuple[str, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                child = (*path, str(key.value))
                lines[child] = key.start_mark.line + 1
                walk(value, child)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                lines[(*path, str(i))] = item.start_mark.line + 1
                walk(item, (*path, str(i)))

    try:
        root = yaml.compose(text)
    except yaml.YAMLError:
        return lines
    if root is not None:
        walk(root, ())
    return lines


def load_text(text: str, source: str = FILE_PATH) -> dict[str, Any]:
    """The raw mapping of a policy file (YAML syntax checked, schema not yet)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = str(getattr(exc, "problem", None) or exc)
        raise PolicyError(
            source, [PolicyProblem("(file)", mark.line + 1 if mark else None, f"not valid YAML: {problem}")]
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise PolicyError(source, [PolicyProblem("(file)", 1, "expected a mapping of sections")])
    return data


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Deep merge: mappings merge key by key; anything else in `override` replaces `base`."""
    result = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merge(result[key], value)
        else:
            result[key] = value
    return result


def validate(data: dict[str, Any], text: str = "", source: str = FILE_PATH) -> RepoPolicy:
    """The policy from a merged mapping (without `_extends`); errors carry the line in `text`."""
    body = {k: v for k, v in data.items() if k != "_extends"}
    try:
        return RepoPolicy.model_validate(body)
    except ValidationError as exc:
        lines = _lines(text) if text else {}
        problems = []
        for error in exc.errors():
            loc = tuple(str(p) for p in error["loc"])
            message = "unknown key" if error["type"] == "extra_forbidden" else error["msg"]
            message = message.removeprefix("Value error, ")
            line = next((lines[loc[:n]] for n in range(len(loc), 0, -1) if loc[:n] in lines), None)
            problems.append(PolicyProblem(".".join(loc) or "(file)", line, message))
        raise PolicyError(source, problems) from None


def parse(text: str, source: str = FILE_PATH) -> RepoPolicy:
    """A single file, merged over the defaults, `_extends` not followed (check-config)."""
    return validate(load_text(text, source), text, source)
