"""Triage decisions that need no model: screening, labels, the comment. Pure.

Screening runs before any model call and says why an issue is skipped. Labels are computed from
the validated enums of the analysis, never copied from model text. The comment is rendered by code;
the few sentences a model wrote (summary, reasons, questions) are neutralised first, so a model
cannot mention people, embed images, add links or inject HTML into what the bot posts.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, Field, create_model

from app.events import Issue, by_bot
from app.policy.labels import LabelSpec
from app.policy.markdown import neutral
from app.policy.repo_policy import RepoPolicy
from app.policy.sanitize import sanitize

Category = Literal["bug", "feature_request", "improvement", "performance", "question", "other"]
Severity = Literal["critical", "high", "medium", "low"]
UNKNOWN_AREA = "unknown"


# ---- screening -------------------------------------------------------------------------------


@dataclass(frozen=True)
class History:
    last_body_hash: str | None  # of the last triage of this issue
    last_body: str | None
    reporter_triages_today: int


@dataclass(frozen=True)
class Screen:
    run: bool
    reason: str


def body_hash(body: str | None) -> str:
    return hashlib.sha256(" ".join(sanitize(body).split()).encode()).hexdigest()


def materially_changed(old: str | None, new: str | None) -> bool:
    """An edit worth a new triage: more than typo fixes (under 90% similar once normalised)."""
    a, b = " ".join(sanitize(old).split()), " ".join(sanitize(new).split())
    return difflib.SequenceMatcher(None, a, b).ratio() < 0.9


def screen(
    issue: Issue,
    *,
    action: str,
    label: str | None,
    policy: RepoPolicy,
    history: History,
    forced: bool = False,
    limited: bool | None = None,
) -> Screen:
    """Whether to triage this issue now, and why not. `forced`: `/autopack triage` asked for it.
    `limited`: the per-reporter daily limit applies (by default unless forced; an issue's author
    forcing a triage without triage rights stays within it)."""
    if limited is None:
        limited = not forced
    feedback = policy.feedback.label
    if issue.is_pull:
        return Screen(False, "pull request")
    if by_bot(issue.user):
        return Screen(False, "bot author")
    if issue.state != "open":
        return Screen(False, "closed")
    if issue.locked:
        return Screen(False, "locked")
    if not forced:
        if feedback not in issue.label_names:
            return Screen(False, "not feedback")
        if action == "labeled" and label != feedback:
            return Screen(False, "another label")
        if action == "edited" and not policy.feedback.triage_on_edit:
            return Screen(False, "edits not triaged")
    if history.last_body_hash == body_hash(issue.body):
        return Screen(False, "already triaged for this body")
    if action == "edited" and not forced and not materially_changed(history.last_body, issue.body):
        return Screen(False, "edit not material")
    if limited and history.reporter_triages_today >= policy.feedback.rate_limit_per_day:
        return Screen(False, "reporter rate limit")
    return Screen(True, "triage")


# ---- the analysis a model returns ---------------------------------------------------------------


class TriageBase(BaseModel):
    category: Category
    severity: Severity
    summary: str = Field(max_length=600, description="Two sentences for a maintainer.")
    warranted: bool = Field(description="Is an improvement pull request warranted?")
    confidence: float = Field(ge=0, le=1)
    reasons: list[str] = Field(max_length=3, description="Why (not) warranted, one line each.")
    questions: list[str] = Field(max_length=3, description="What the reporter should add; empty if nothing.")


def analysis_schema(areas: list[str], open_numbers: list[int]) -> type[TriageBase]:
    """The answer's schema for this issue: `area` and `duplicates` may only name what we listed."""
    return _analysis_schema(tuple(areas), tuple(open_numbers))


@functools.lru_cache(maxsize=256)
def _analysis_schema(areas: tuple[str, ...], open_numbers: tuple[int, ...]) -> type[TriageBase]:
    """Building a pydantic model costs milliseconds; a repository asks with the same lists until
    its directories or open feedback change."""
    literal: Any = Literal
    area_type = literal.__getitem__(tuple([*areas, UNKNOWN_AREA]))
    duplicates: Any
    if open_numbers:
        duplicates = (list[literal.__getitem__(tuple(open_numbers))], Field(max_length=5))  # type: ignore[misc]
    else:  # no candidates: the field has no possible value, and providers are not even shown it
        duplicates = (list[int], Field(default_factory=list, max_length=0))
    model: type[TriageBase] = create_model(
        "TriageAnalysis", __base__=TriageBase, area=(area_type, ...), duplicates=duplicates
    )
    return model


# ---- labels -----------------------------------------------------------------------------------

_TYPE = {
    "bug": ("type:bug", "d73a4a"),
    "feature_request": ("type:feature", "a2eeef"),
    "improvement": ("type:improvement", "84b6eb"),
    "performance": ("type:performance", "fbca04"),
    "question": ("type:question", "d876e3"),
    "other": ("type:other", "cfd3d7"),
}
_SEVERITY = {"critical": "b60205", "high": "d93f0b", "medium": "fbca04", "low": "0e8a16"}
TRIAGED = LabelSpec("autopack:triaged", "5319e7", "Autopack triaged this feedback")
NEEDS_INFO = LabelSpec("autopack:needs-info", "fef2c0", "Autopack asked the reporter for more information")
DUPLICATE = LabelSpec("autopack:duplicate", "cfd3d7", "Autopack found a likely duplicate")


def labels_for(analysis: TriageBase) -> list[LabelSpec]:
    name, color = _TYPE[analysis.category]
    labels = [
        LabelSpec(name, color, f"Feedback: {analysis.category.replace('_', ' ')}"),
        LabelSpec(
            f"severity:{analysis.severity}", _SEVERITY[analysis.severity], f"Severity: {analysis.severity}"
        ),
    ]
    area = getattr(analysis, "area", UNKNOWN_AREA)
    if area != UNKNOWN_AREA:
        labels.append(LabelSpec(f"area:{area}"[:50], "c5def5", f"Affected area: {area}"))
    labels.append(TRIAGED)
    if analysis.questions:
        labels.append(NEEDS_INFO)
    if getattr(analysis, "duplicates", []):
        labels.append(DUPLICATE)
    return labels


# ---- the comment ------------------------------------------------------------------------------


def render_comment(
    analysis: TriageBase,
    *,
    policy: RepoPolicy,
    model: str,
    tokens: int,
    cost: float,
    notes: tuple[str, ...] = (),
) -> str:
    area = getattr(analysis, "area", UNKNOWN_AREA)
    duplicates: list[int] = list(getattr(analysis, "duplicates", []))
    head = f"**Autopack triage:** {analysis.category.replace('_', ' ')} · severity **{analysis.severity}**"
    if area != UNKNOWN_AREA:
        head += f" · area `{area}`"
    lines = [head, "", neutral(analysis.summary)]
    if duplicates:
        lines += ["", "Possibly a duplicate of " + ", ".join(f"#{n}" for n in duplicates) + "."]
    if analysis.questions:
        lines += ["", "To act on this, it would help to know:"]
        lines += [f"- {neutral(q)}" for q in analysis.questions]
    if analysis.warranted and analysis.confidence >= policy.proposals.min_confidence:
        lines += [
            "",
            "An improvement looks warranted. Maintainers with write access can ask for a verified "
            "pull request with `/autopack propose`.",
        ]
    details = [
        f"- improvement warranted: **{'yes' if analysis.warranted else 'no'}** "
        f"(confidence {analysis.confidence:.0%})",
        *[f"- {neutral(r)}" for r in analysis.reasons],
        f"- model `{model}`, {tokens:,} tokens, ${cost:.4f}",
        *[f"- {neutral(n)}" for n in notes],
    ]
    lines += ["", "<details><summary>Details</summary>", "", *details, "", "</details>"]
    return "\n".join(lines)
