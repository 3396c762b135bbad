"""The approval gate, rule by rule (DESIGN §5.4): each test fails if its rule is removed."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from app.events import CheckRun
from app.policy.commands import Permission
from app.policy.gate import GateInput, Review, audit_verdict, decide, latest_reviews
from app.policy.proposal import CheckResult

HEAD = "a" * 40
OLD = "b" * 40
GREEN = (CheckResult("tests", "passed"), CheckResult("lint", "passed"))


def approval(who: str = "alice", commit: str = HEAD, order: int = 1, kind: str = "User") -> Review:
    return Review(who, kind, "APPROVED", commit, order)


def gate(*reviews: Review, **changes: Any) -> GateInput:
    base = GateInput(
        head_sha=HEAD,
        reviews=reviews,
        permissions={"alice": Permission.WRITE, "bob": Permission.MAINTAIN, "carol": Permission.WRITE},
        checks=GREEN,
        required_checks=None,
        audit="comment",
        draft=False,
        open=True,
        mergeable_state="clean",
        reporter="reporter",
        bot_login="autopack[bot]",
    )
    return replace(base, **changes)


def test_a_writer_approving_the_head_with_everything_green_merges() -> None:
    decision = decide(gate(approval()))
    assert decision.action == "merge"
    assert decision.approvers == ("alice",)
    assert decision.status_line(HEAD) == "approved on `aaaaaaa` by alice; merging"


def test_stale_approval_on_an_older_commit() -> None:
    decision = decide(gate(approval(commit=OLD)))
    assert decision.action == "wait"
    assert "approval of `aaaaaaa` by a writer (earlier approvals by alice were for an older commit)" in (
        decision.reasons
    )


def test_approval_by_a_reader() -> None:
    decision = decide(gate(approval("dave"), permissions={"dave": Permission.READ}))
    assert decision.action == "wait"
    assert decision.approvers == ()


def test_approval_by_a_bot_autopack_included() -> None:
    for review in (
        approval("autopack[bot]", kind="Bot"),
        approval("autopack[bot]", kind="User"),  # by login alone
        approval("renovate", kind="Bot"),  # by type alone
    ):
        permissions = {review.reviewer.lower(): Permission.ADMIN}
        assert decide(gate(review, permissions=permissions)).action == "wait", review


def test_the_reporter_cannot_be_the_only_approver() -> None:
    permissions = {"reporter": Permission.WRITE, "alice": Permission.WRITE}
    alone = decide(gate(approval("reporter"), permissions=permissions))
    assert alone.action == "wait"
    assert "another writer (the reporter cannot approve alone)" in alone.reasons[0]
    assert decide(gate(approval("reporter"), approval("alice", order=2), permissions=permissions)).action == (
        "merge"
    )
    allowed = gate(approval("reporter"), permissions=permissions, reporter_can_approve=True)
    assert decide(allowed).action == "merge"


def test_a_dismissed_review_counts_for_nothing() -> None:
    dismissed = Review("alice", "User", "DISMISSED", HEAD, 2)
    assert decide(gate(approval(order=1), dismissed)).action == "wait"


def test_a_later_changes_requested_from_a_writer_blocks() -> None:
    objection = Review("bob", "User", "CHANGES_REQUESTED", OLD, 2)
    decision = decide(gate(approval(order=1), objection))
    assert decision.action == "blocked"
    assert "changes requested by @bob" in decision.reasons
    # ... until bob approves the head himself (his latest review is what counts)
    assert decide(gate(approval(order=1), objection, approval("bob", order=3))).action == "merge"
    # a plain comment afterwards does not lift it
    comment = Review("bob", "User", "COMMENTED", HEAD, 4)
    assert decide(gate(approval(order=1), objection, comment)).action == "blocked"


def test_changes_requested_by_a_reader_does_not_block() -> None:
    objection = Review("eve", "User", "CHANGES_REQUESTED", HEAD, 2)
    permissions = {"alice": Permission.WRITE, "eve": Permission.READ}
    assert decide(gate(approval(), objection, permissions=permissions)).action == "merge"


def test_checks_pending_or_failing() -> None:
    pending = decide(
        gate(approval(), checks=(CheckResult("tests", "passed"), CheckResult("lint", "pending")))
    )
    assert pending.action == "wait"
    assert "checks 1/2 green" in pending.reasons
    failing = decide(gate(approval(), checks=(CheckResult("tests", "failed"), CheckResult("lint", "passed"))))
    assert failing.action == "blocked"
    assert "failing checks: tests" in failing.reasons


def test_required_checks_decide_where_known() -> None:
    checks = (CheckResult("tests", "passed"), CheckResult("flaky-optional", "failed"))
    assert decide(gate(approval(), checks=checks, required_checks=frozenset({"tests"}))).action == "merge"
    missing = decide(gate(approval(), checks=checks, required_checks=frozenset({"tests", "e2e"})))
    assert missing.action == "wait"
    assert "checks 1/2 green" in missing.reasons


def test_audit_block_and_a_missing_audit() -> None:
    blocked = decide(gate(approval(), audit="block"))
    assert blocked.action == "blocked"
    assert "the Autopack audit of `aaaaaaa` blocks it" in blocked.reasons
    assert decide(gate(approval(), audit=None)).action == "wait"
    assert decide(gate(approval(), audit="approve")).action == "merge"


def test_draft_closed_and_conflicting_prs() -> None:
    assert decide(gate(approval(), draft=True)).action == "wait"
    assert decide(gate(approval(), open=False)).action == "blocked"
    assert decide(gate(approval(), mergeable_state="dirty")).action == "blocked"


def test_permission_revoked_after_approving() -> None:
    """Permissions are GitHub's answer now: a former writer's approval no longer counts."""
    assert decide(gate(approval(), permissions={"alice": Permission.READ})).action == "wait"
    assert decide(gate(approval(), permissions={})).action == "wait"


def test_two_approvals_required_and_one_given() -> None:
    one = decide(gate(approval(), required_approvals=2))
    assert one.action == "wait"
    assert "approval of `aaaaaaa` by a writer" in one.reasons[0]
    two = decide(gate(approval(), approval("carol", order=2), required_approvals=2))
    assert two.action == "merge"
    # the same person approving twice is one approver
    assert decide(gate(approval(order=1), approval(order=2), required_approvals=2)).action == "wait"


def test_status_line_lists_every_reason() -> None:
    decision = decide(
        gate(
            checks=(
                CheckResult("tests", "passed"),
                CheckResult("lint", "pending"),
                CheckResult("e2e", "passed"),
            )
        )
    )
    assert decision.status_line(HEAD) == "waiting for: approval of `aaaaaaa` by a writer; checks 2/3 green"


def test_latest_reviews_and_the_audit_check_run() -> None:
    reviews = (approval(order=2), Review("alice", "User", "CHANGES_REQUESTED", OLD, 1))
    assert latest_reviews(reviews)["alice"].state == "APPROVED"
    runs = [
        CheckRun.model_validate(r)
        for r in [
            {
                "id": 1,
                "name": "Autopack audit",
                "status": "completed",
                "conclusion": "failure",
                "app": {"id": 7},
            },
            {
                "id": 2,
                "name": "Autopack audit",
                "status": "completed",
                "conclusion": "neutral",
                "app": {"id": 7},
            },
            {
                "id": 3,
                "name": "Autopack audit",
                "status": "completed",
                "conclusion": "failure",
                "app": {"id": 9},
            },
        ]
    ]
    assert audit_verdict(runs, 7) == "comment"  # the latest of our own; another app's run is ignored
    assert audit_verdict(runs[:1], 7) == "block"
    assert audit_verdict([], 7) is None


def test_no_check_at_all_is_not_yet_never_green() -> None:
    """CI has not created its runs yet: an approval of the head must not merge unchecked code."""
    decision = decide(gate(approval(), checks=()))
    assert decision.action == "wait"
    assert "CI on `aaaaaaa` (no check has reported yet)" in decision.reasons


def test_no_check_merges_only_where_verification_found_no_ci() -> None:
    assert decide(gate(approval(), checks=(), no_ci=True)).action == "merge"
    ignored_only = (CheckResult("docs", "ignored"),)  # skipped and cancelled runs prove nothing
    assert decide(gate(approval(), checks=ignored_only)).action == "wait"


def test_required_checks_that_have_not_reported_are_pending() -> None:
    decision = decide(gate(approval(), checks=(), required_checks=frozenset({"tests"})))
    assert decision.action == "wait"
    assert "checks 0/1 green" in decision.reasons


def test_a_review_is_read_from_the_api_once_for_every_flow() -> None:
    listed = {
        "id": 80,
        "user": {"login": "octocat", "type": "User"},
        "body": "Looks good",
        "state": "APPROVED",
        "commit_id": "ecdd80bb57125d7ba9641ffaa4d7d2c19d3f3091",
    }
    assert Review.from_api(listed) == Review(
        "octocat", "User", "APPROVED", "ecdd80bb57125d7ba9641ffaa4d7d2c19d3f3091", 80, "Looks good"
    )
    # A deleted account (no user) and a review without a body still read, as nobody's.
    assert Review.from_api({"id": 3, "user": None, "state": "COMMENTED", "body": None}) == Review(
        "", "User", "COMMENTED", "", 3, ""
    )
