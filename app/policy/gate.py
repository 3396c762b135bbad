"""The approval gate (DESIGN §5.4): may Autopack merge its pull request now? Pure.

Everything the decision needs arrives as arguments — the reviews, each reviewer's permission as
GitHub reports it *now*, the head commit, its checks, the audit's verdict on it, the PR's state and
the policy — and the answer is data: merge, or wait / blocked with every reason, in words a
maintainer reads in the PR's Autopack comment. Nothing here can merge; `app.flows.gate` acts on it.

The rules, each with a test that fails without it:
- an approval counts only if it is the reviewer's latest review, was given on the current head
  commit, comes from a human (never a bot, Autopack included) who has write permission now;
- a dismissed review counts for nothing; a writer whose latest review requests changes blocks;
- the person whose feedback started the PR cannot be its only approver (unless the policy allows);
- `merge.required_approvals` distinct approvers;
- the head's checks are green (the branch's required checks where known, otherwise all of them);
  no check at all is "not yet", never green, unless the proposal's verification found that the
  repository has no CI;
- the audit of the head does not block, the PR is not a draft and has no merge conflict.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from app.events import CheckRun
from app.policy.commands import Permission, is_bot
from app.policy.proposal import CheckResult

AUDIT_CHECK = "Autopack audit"
Action = Literal["merge", "wait", "blocked"]


@dataclass(frozen=True)
class Review:
    reviewer: str
    reviewer_type: str  # "User" or "Bot"
    state: str  # APPROVED | CHANGES_REQUESTED | COMMENTED | DISMISSED | PENDING
    commit_id: str
    order: int  # GitHub's review id: later reviews have larger ids
    body: str = ""

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Review:
        """A review as GitHub's REST API lists it (`GET /pulls/{n}/reviews`)."""
        user = data.get("user") or {}
        return cls(
            str(user.get("login") or ""),
            str(user.get("type") or "User"),
            str(data.get("state") or ""),
            str(data.get("commit_id") or ""),
            int(data.get("id") or 0),
            str(data.get("body") or ""),
        )


@dataclass(frozen=True)
class GateInput:
    head_sha: str
    reviews: tuple[Review, ...]
    permissions: Mapping[str, Permission]  # looked up now, for every reviewer that approves or objects
    checks: tuple[CheckResult, ...]  # CI on the head (Autopack's own check runs excluded)
    required_checks: frozenset[str] | None  # the base branch's required checks, None when unknown
    audit: str | None  # the verdict on the head: "approve", "comment", "block", or None (not audited)
    draft: bool
    open: bool
    mergeable_state: str | None  # GitHub's: clean, dirty, blocked, behind, unstable, unknown, ...
    reporter: str | None  # who filed the feedback that started the PR
    bot_login: str
    required_approvals: int = 1
    reporter_can_approve: bool = False
    no_ci: bool = False  # verification found no CI in this repository: no checks is the expected state


@dataclass(frozen=True)
class GateDecision:
    action: Action
    reasons: tuple[str, ...]  # why not merge (empty when merging)
    approvers: tuple[str, ...]  # approvals that count
    checks_green: int
    checks_total: int

    def status_line(self, head: str) -> str:
        if self.action == "merge":
            return f"approved on `{head[:7]}` by {', '.join(self.approvers)}; merging"
        word = "blocked by" if self.action == "blocked" else "waiting for"
        return f"{word}: " + "; ".join(self.reasons)


@dataclass(frozen=True)
class CiState:
    green: int
    total: int
    failed: tuple[str, ...]
    pending: tuple[str, ...]  # running, or required and not reported yet
    none_yet: bool = False  # no check has reported at all: not green, only not started

    @property
    def all_green(self) -> bool:
        return not self.failed and not self.pending and not self.none_yet


def ci_state(
    checks: Iterable[CheckResult], required: frozenset[str] | None, *, no_ci_expected: bool = False
) -> CiState:
    """The head's checks that count: the required ones where known (a required check that has not
    reported is pending), otherwise every check that proves something. Zero checks is "none yet"
    (CI has not created its runs), never green, unless `no_ci_expected` says this repository has no
    CI at all."""
    relevant = [c for c in checks if c.state != "ignored"]
    missing: list[str] = []
    if required is not None:
        missing = sorted(required - {c.name for c in relevant})
        relevant = [c for c in relevant if c.name in required]
    return CiState(
        green=sum(1 for c in relevant if c.state == "passed"),
        total=len(relevant) + len(missing),
        failed=tuple(sorted(c.name for c in relevant if c.state == "failed")),
        pending=tuple(sorted([c.name for c in relevant if c.state == "pending"] + missing)),
        none_yet=not relevant and not missing and not no_ci_expected,
    )


def latest_reviews(reviews: tuple[Review, ...]) -> dict[str, Review]:
    """Each reviewer's latest review that states a position (a plain comment does not replace an
    approval or a change request, as on GitHub)."""
    latest: dict[str, Review] = {}
    for review in sorted(reviews, key=lambda r: r.order):
        if review.state.upper() in ("APPROVED", "CHANGES_REQUESTED", "DISMISSED"):
            latest[review.reviewer.lower()] = review
    return latest


def _is_bot(review: Review, bot_login: str) -> bool:
    return is_bot(review.reviewer, review.reviewer_type) or review.reviewer.lower() == bot_login.lower()


def decide(gate: GateInput) -> GateDecision:
    waits: list[str] = []
    blocks: list[str] = []
    head = gate.head_sha[:7]
    if not gate.open:
        blocks.append("the pull request is closed")
    approvers: list[str] = []
    stale: list[str] = []
    for login, review in latest_reviews(gate.reviews).items():
        state = review.state.upper()
        writer = gate.permissions.get(login, gate.permissions.get(review.reviewer, Permission.NONE))
        if (
            state == "CHANGES_REQUESTED"
            and writer >= Permission.WRITE
            and not _is_bot(review, gate.bot_login)
        ):
            blocks.append(f"changes requested by @{review.reviewer}")
        if state != "APPROVED" or _is_bot(review, gate.bot_login) or writer < Permission.WRITE:
            continue
        if review.commit_id != gate.head_sha:
            stale.append(review.reviewer)
            continue
        approvers.append(review.reviewer)
    reporter = (gate.reporter or "").lower()
    counted = list(approvers)
    if not gate.reporter_can_approve and [a.lower() for a in counted] == [reporter] and reporter:
        counted = []  # the reporter cannot be the only approver
    if len(counted) < gate.required_approvals:
        missing = gate.required_approvals - len(counted)
        who = (
            "another writer (the reporter cannot approve alone)" if approvers and not counted else "a writer"
        )
        text = (
            f"approval of `{head}` by {who}"
            if missing == 1
            else f"{missing} more approvals of `{head}` by writers"
        )
        if stale:
            text += f" (earlier approvals by {', '.join(stale)} were for an older commit)"
        waits.append(text)

    ci = ci_state(gate.checks, gate.required_checks, no_ci_expected=gate.no_ci)
    green, total = ci.green, ci.total
    if ci.failed:
        blocks.append(f"failing checks: {', '.join(ci.failed)}")
    elif ci.pending:
        waits.append(f"checks {green}/{total} green")
    elif ci.none_yet:
        waits.append(f"CI on `{head}` (no check has reported yet)")

    if gate.audit == "block":
        blocks.append(f"the Autopack audit of `{head}` blocks it")
    elif gate.audit is None:
        waits.append(f"the Autopack audit of `{head}`")
    if gate.draft:
        waits.append("the pull request to be marked ready for review")
    if gate.mergeable_state == "dirty":
        blocks.append("merge conflicts with the base branch")

    if blocks:
        return GateDecision("blocked", tuple(blocks + waits), tuple(counted), green, total)
    if waits:
        return GateDecision("wait", tuple(waits), tuple(counted), green, total)
    return GateDecision("merge", (), tuple(counted), green, total)


def audit_verdict(check_runs: list[CheckRun], own_app_id: int | None) -> str | None:
    """The verdict of Autopack's own audit check run on the head (the latest, if several)."""
    completed = [r for r in check_runs if r.status == "completed"]
    ours = [r for r in completed if r.name == AUDIT_CHECK and r.by_app(own_app_id)]
    if not ours:
        return None
    latest = max(ours, key=lambda r: r.id or 0)
    return {"failure": "block", "success": "approve"}.get(str(latest.conclusion), "comment")
