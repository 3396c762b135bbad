"""Audit decisions that need no model. Pure and table-tested.

- Categories of a change from path globs (defaults below, extended by the policy's `audit.categories`).
- Complexity (low/medium/high) from files, changed lines and categories; it routes the auditors.
- A deterministic risk score 0-100 with the reasons that add up to it.
- The auditor's answer schema: concrete findings only (no field for praise or a diff summary).
- The consensus of two auditors: the stricter verdict wins; a disagreement is stated.
- Noise control: severity and confidence floors, a cap on line comments.
- Where each finding may go: a line comment only on lines the diff shows (checked here), else the
  summary; a `suggestion` block only for a small replacement.
- Check-run annotations in GitHub's batches of 50; fingerprints so a re-audit repeats nothing.
- Quiet when fine: whether a review is posted at all, or the check run alone answers.
- Which pull requests are audited without being asked (`audit.auto`).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.policy.diff import FileDiff, matches
from app.policy.markdown import fence, neutral

Category = Literal[
    "security_auth_change", "schema_contract_change", "external_feature_reuse", "docs", "tests", "general"
]
Complexity = Literal["low", "medium", "high"]
Severity = Literal["critical", "high", "medium", "low", "info"]
Verdict = Literal["approve", "comment", "block"]

SEVERITY_RANK = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}
VERDICT_RANK = {"approve": 0, "comment": 1, "block": 2}

DEFAULT_CATEGORY_GLOBS: dict[str, tuple[str, ...]] = {
    "security_auth_change": (
        "**/auth/**",
        "**/*auth*",
        "**/security/**",
        "**/*login*",
        "**/*password*",
        "**/*token*",
        "**/*crypt*",
        "**/*permission*",
        "**/*session*",
        "**/*oauth*",
        "**/*jwt*",
        "**/*secret*",
        ".github/workflows/*",
        "**/Dockerfile",
        "**/*.pem",
    ),
    "schema_contract_change": (
        "**/migrations/**",
        "**/*.sql",
        "**/schema*",
        "**/*.proto",
        "**/openapi*",
        "**/*.graphql",
        "**/*.avsc",
    ),
    "external_feature_reuse": (
        "**/requirements*.txt",
        "**/pyproject.toml",
        "**/setup.py",
        "**/setup.cfg",
        "**/Pipfile",
        "**/package.json",
        "**/go.mod",
        "**/Cargo.toml",
        "**/Gemfile",
        "**/pom.xml",
        "**/build.gradle*",
        "**/vendor/**",
        "**/third_party/**",
        "**/external/**",
    ),
    "tests": (
        "tests/**",
        "test/**",
        "**/tests/**",
        "**/test_*.py",
        "**/*_test.py",
        "**/*_test.go",
        "**/*.test.*",
        "**/*.spec.*",
        "**/__tests__/**",
        "**/conftest.py",
    ),
    "docs": ("docs/**", "**/*.md", "**/*.rst", "**/*.adoc", "**/CHANGELOG*", "**/LICENSE*"),
}
# Review and budget order: risky categories first, docs last.
CATEGORY_ORDER = (
    "security_auth_change",
    "schema_contract_change",
    "external_feature_reuse",
    "general",
    "tests",
    "docs",
)


# Agents that open pull requests under a user-like account. GitHub Apps (`…[bot]`, type Bot) need no
# listing; the Copilot coding agent's pull requests are authored by `Copilot`.
AGENT_LOGINS = frozenset({"copilot"})
DEPENDABOT_LOGIN = "dependabot[bot]"


def unasked_skip(
    auto: Literal["bot_prs", "all", "off"],
    *,
    author: str,
    author_type: str,
    own_bot: str,
    bot_authors: list[str],
    dependabot_flow: bool,
) -> str | None:
    """Why a pull request is *not* audited without a command (None: audit it).

    `bot_prs` audits what bots and agents open (their changes have no human author to answer for
    them): Autopack's own pull requests, any GitHub App's, the Copilot agent's and the logins listed
    in `audit.bot_authors`. Dependabot's go to the dependency flow (its risk summary) rather than a
    second review, unless that flow is off. `all` audits humans' pull requests too."""
    login = author.lower()
    if auto == "off":
        return "policy"
    if login == DEPENDABOT_LOGIN and dependabot_flow:
        return "dependabot_flow"
    if auto == "all":
        return None
    is_bot = author_type.lower() == "bot" or login.endswith("[bot]")
    listed = login in AGENT_LOGINS or login in {a.lower() for a in bot_authors}
    if is_bot or listed or login == own_bot.lower():
        return None
    return "human_author"


def file_categories(path: str, extra: dict[str, list[str]] | None = None) -> tuple[str, ...]:
    """The categories one path belongs to (`general` when none)."""
    found = []
    for category in CATEGORY_ORDER:
        globs = (*DEFAULT_CATEGORY_GLOBS.get(category, ()), *(extra or {}).get(category, ()))
        if category != "general" and matches(path, globs):
            found.append(category)
    if found and set(found) <= {"docs", "tests"} and "external_feature_reuse" not in found:
        return tuple(found[:1])  # a test's README is docs or tests, not both
    return tuple(found) or ("general",)


def categories(files: list[FileDiff], extra: dict[str, list[str]] | None = None) -> tuple[str, ...]:
    found: set[str] = set()
    for diff in files:
        found.update(file_categories(diff.path, extra))
        if diff.previous_path:
            found.update(file_categories(diff.previous_path, extra))
    return tuple(c for c in CATEGORY_ORDER if c in found)


def primary_category(found: tuple[str, ...]) -> str:
    """The category that routes the auditors: the riskiest present."""
    return found[0] if found else "general"


def priority(diff: FileDiff, extra: dict[str, list[str]] | None = None) -> int:
    """Budget order of a file: its riskiest category's place in CATEGORY_ORDER."""
    return min(CATEGORY_ORDER.index(c) for c in file_categories(diff.path, extra))


def complexity(files: list[FileDiff], found: tuple[str, ...]) -> Complexity:
    lines = sum(f.additions + f.deletions for f in files if f.kind == "code")
    if {"security_auth_change", "schema_contract_change"} & set(found) or lines > 400 or len(files) > 20:
        return "high"
    if lines > 80 or len(files) > 5 or "external_feature_reuse" in found:
        return "medium"
    return "low"


@dataclass(frozen=True)
class Risk:
    score: int
    reasons: tuple[str, ...]


def risk(files: list[FileDiff], found: tuple[str, ...]) -> Risk:
    """A deterministic score 0-100: what the change touches, how much, and what it leaves untested."""
    score = 0
    reasons: list[str] = []

    def add(points: int, reason: str) -> None:
        nonlocal score
        if points > 0:
            score += points
            reasons.append(f"+{points} {reason}")

    add(35 if "security_auth_change" in found else 0, "touches authentication, secrets or CI")
    add(25 if "schema_contract_change" in found else 0, "changes a schema or contract")
    add(15 if "external_feature_reuse" in found else 0, "changes dependencies or vendored code")
    if any(f.path.startswith(".github/workflows/") for f in files):
        add(10, "changes CI workflows")
    code = [f for f in files if f.kind == "code"]
    lines = sum(f.additions + f.deletions for f in code)
    add(min(20, lines // 25), f"{lines} changed lines")
    add(min(10, len(files) // 2), f"{len(files)} files")
    touches_code = any(file_categories(f.path) == ("general",) for f in code)
    if touches_code and "tests" not in found:
        add(10, "code changes without test changes")
    opaque = [f for f in files if f.kind in ("binary", "generated", "large")]
    add(5 if opaque else 0, f"{len(opaque)} binary, generated or unreviewable files")
    if set(found) <= {"docs", "tests"}:
        score = min(score, 10)
    return Risk(min(100, score), tuple(reasons) or ("+0 nothing risky found",))


# ---- the auditor's answer ---------------------------------------------------------------------


class Finding(BaseModel):
    model_config = ConfigDict(frozen=True)

    severity: Severity
    path: str
    start_line: int = Field(ge=1)
    end_line: int = Field(ge=1)
    title: str = Field(max_length=120)
    explanation: str = Field(max_length=1200, description="The concrete defect and its consequence.")
    replacement: str | None = Field(
        default=None, description="Exact new text for lines start_line..end_line, when the fix is small."
    )
    confidence: float = Field(ge=0, le=1)


class AuditAnswer(BaseModel):
    """Concrete defects only: there is no field for praise or for a summary of the diff."""

    findings: list[Finding] = Field(max_length=25)
    verdict: Verdict
    confidence: float = Field(ge=0, le=1)


def consensus(primary: Verdict, secondary: Verdict | None) -> tuple[Verdict, str | None]:
    """The stricter verdict, and a sentence when the auditors disagreed."""
    if secondary is None:
        return primary, None
    final = primary if VERDICT_RANK[primary] >= VERDICT_RANK[secondary] else secondary
    if primary == secondary:
        return final, None
    return final, f"The auditors disagreed ({primary} vs {secondary}); the stricter verdict, {final}, stands."


@dataclass(frozen=True)
class Floors:
    min_severity: Severity = "low"
    min_confidence: float = 0.5
    max_line_comments: int = 10


def keep(findings: list[Finding], floors: Floors) -> list[Finding]:
    """Drop findings under the floors; most severe first."""
    kept = [
        f
        for f in findings
        if SEVERITY_RANK[f.severity] >= SEVERITY_RANK[floors.min_severity]
        and f.confidence >= floors.min_confidence
    ]
    return sorted(kept, key=lambda f: (-SEVERITY_RANK[f.severity], -f.confidence, f.path, f.start_line))


@dataclass(frozen=True)
class Placement:
    line_comments: tuple[Finding, ...]
    in_summary: tuple[Finding, ...]


def place(findings: list[Finding], files: list[FileDiff], floors: Floors) -> Placement:
    """A line comment only where every line of the finding is a line the diff shows."""
    commentable = {f.path: f.commentable for f in files}
    on_diff: list[Finding] = []
    elsewhere: list[Finding] = []
    for finding in findings:
        lines = commentable.get(finding.path, frozenset())
        span = range(finding.start_line, max(finding.start_line, finding.end_line) + 1)
        fits = finding.end_line >= finding.start_line and all(n in lines for n in span)
        if fits and len(on_diff) < floors.max_line_comments:
            on_diff.append(finding)
        else:
            elsewhere.append(finding)
    return Placement(tuple(on_diff), tuple(elsewhere))


SUGGESTION_MAX_LINES = 6


def comment_body(finding: Finding) -> str:
    """A line comment: the model's words neutralised, its replacement only inside a fence."""
    text = (
        f"**{finding.severity}: {neutral(finding.title)}**\n\n{neutral(finding.explanation, keep_lines=True)}"
    )
    small = finding.end_line - finding.start_line + 1 <= SUGGESTION_MAX_LINES
    if finding.replacement is not None and small and finding.replacement.count("\n") < 20:
        text += "\n\n" + fence(finding.replacement, "suggestion")
    return text


def fingerprint(finding: Finding) -> str:
    """Stable across commits that move lines: the file and the finding's title."""
    key = f"{finding.path}\n{' '.join(finding.title.lower().split())}"
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def new_findings(findings: list[Finding], reported: set[str]) -> list[Finding]:
    return [f for f in findings if fingerprint(f) not in reported]


ANNOTATIONS_PER_REQUEST = 50
_LEVEL = {"critical": "failure", "high": "failure", "medium": "warning", "low": "notice", "info": "notice"}


def annotation_batches(findings: list[Finding]) -> list[list[dict[str, object]]]:
    """Check-run annotations in batches GitHub accepts (at most 50 per request)."""
    items: list[dict[str, object]] = [
        {
            "path": f.path,
            "start_line": f.start_line,
            "end_line": max(f.start_line, f.end_line),
            "annotation_level": _LEVEL[f.severity],
            "title": f.title[:255],
            "message": f.explanation[:64_000],
        }
        for f in findings
    ]
    return [items[i : i + ANNOTATIONS_PER_REQUEST] for i in range(0, len(items), ANNOTATIONS_PER_REQUEST)]


def check_conclusion(verdict: str) -> str:
    """The check run's conclusion for a verdict (an unknown one is neutral, never success)."""
    return {"approve": "success", "comment": "neutral", "block": "failure"}.get(verdict, "neutral")


def speaks(verdict: str, *, fresh: int) -> bool:
    """Quiet when fine: a review only when it has something new for a person to read (a finding not
    reported on an earlier commit) or blocks; otherwise the check run alone answers, its conclusion
    still the verdict's (green only when the auditor approved, never by silence)."""
    return verdict == "block" or fresh > 0


# ---- instructions aimed at the reviewer --------------------------------------------------------

_AIMED_AT_REVIEWER = re.compile(
    r"\b(ai|llm|gpt|claude|copilot|autopack|automated|bot|model)\b[\s\w-]{0,20}?"
    r"\b(reviewers?|auditors?|reviews?|assistants?)\b",
    re.IGNORECASE,
)
_ORDER = re.compile(
    r"\b(approve|lgtm|ignore|disregard|do not (?:report|flag|comment)|don't (?:report|flag)|"
    r"no (?:issues|findings)|mark (?:this|it) (?:as )?safe|skip (?:this|the) (?:file|review))\b",
    re.IGNORECASE,
)


def reviewer_instructions(files: list[FileDiff]) -> list[Finding]:
    """Added lines that tell an automated reviewer what to conclude: always a finding, found by
    code, so no model can be talked out of reporting them."""
    found: list[Finding] = []
    for diff in files:
        for hunk in diff.hunks:
            line_no = int(hunk.header.split("+", 1)[1].split(",", 1)[0].split(" ", 1)[0])
            for raw in hunk.lines:
                if raw.startswith("+") and _AIMED_AT_REVIEWER.search(raw) and _ORDER.search(raw):
                    quote = " ".join(raw[1:].split())[:120]
                    found.append(
                        Finding(
                            severity="medium",
                            path=diff.path,
                            start_line=line_no,
                            end_line=line_no,
                            title=f"Instruction aimed at an automated reviewer: {quote[:70]}",
                            explanation=(
                                f"This line tells an automated reviewer what to conclude (`{quote}`). "
                                "Autopack treats it as data, not as an order; a person should check why "
                                "it is in the change."
                            ),
                            confidence=1.0,
                        )
                    )
                if not raw.startswith("-"):
                    line_no += 1
    return found
