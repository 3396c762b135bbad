"""Rate-limit-aware scheduling: when a job should wait for its installation's GitHub budget. Pure.

An installation token has one hourly budget (5,000 requests; more for large organisations) shared by
everything Autopack does there. Interactive work — commands, the merge gate, Dependabot, audits and
first triages — is what a person waits for; background work — the weekly digest, push audits,
re-triage after an edit, reading dismissals of a closed pull request — is not. So:

- background work waits for the reset when fewer than a reserve (a tenth of the limit, at least 100
  requests) remain, leaving that reserve to interactive work;
- after a secondary rate limit (abuse detection), every job of that installation waits until GitHub's
  `retry-after` has passed: going on would only extend it;
- what is known is what GitHub said last, with its time: a budget whose reset has passed says nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

RESERVE_SHARE = 0.1
RESERVE_FLOOR = 100


@dataclass(frozen=True)
class Budget:
    """An installation's core rate limit as GitHub last reported it."""

    remaining: int
    limit: int
    reset_at: float  # epoch seconds
    blocked_until: float = 0.0  # a secondary rate limit's retry-after, when one was hit


@dataclass(frozen=True)
class Deferral:
    until: float
    kind: str  # low_budget | secondary_limit (a metric label)
    reason: str


def reserve(limit: int) -> int:
    """Requests kept for interactive work."""
    return max(RESERVE_FLOOR, int(limit * RESERVE_SHARE))


def deferral(budget: Budget | None, *, background: bool, now: float) -> Deferral | None:
    """Whether a job must wait, until when and why (None: run it now)."""
    if budget is None:
        return None
    if budget.blocked_until > now:
        return Deferral(
            budget.blocked_until,
            "secondary_limit",
            "GitHub's secondary rate limit for this installation: every job waits until it lifts",
        )
    if not background or budget.reset_at <= now:
        return None
    kept = reserve(budget.limit)
    if budget.remaining >= kept:
        return None
    return Deferral(
        budget.reset_at + 1,
        "low_budget",
        f"{budget.remaining} of {budget.limit} GitHub requests left until the reset; the last "
        f"{kept} are kept for commands, the gate and Dependabot",
    )
