"""A proposal's status moves only along the edges of `policy.proposal.TRANSITIONS`: one test per
edge, one per refused move, and the table's shape checked against the sets the flows use."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from app.errors import PermanentError
from app.policy.proposal import (
    ENDED,
    GATED,
    OPEN,
    TRANSITIONS,
    WAITING,
    InvalidTransition,
    Proposal,
    Status,
    issue_comment,
    may_move,
)

EDGES = sorted((a, b) for a, targets in TRANSITIONS.items() for b in targets)
REFUSED = sorted((a, b) for a in Status for b in Status if a != b and b not in TRANSITIONS[a])


def proposal(status: Status) -> Proposal:
    return Proposal("octo-org/widgets", 7, 4242, status=status, pr_number=12)


@pytest.mark.parametrize(("start", "end"), EDGES, ids=[f"{a}->{b}" for a, b in EDGES])
def test_each_edge_is_a_move(start: Status, end: Status) -> None:
    record = proposal(start)
    record.move(end)
    assert record.status is end


@pytest.mark.parametrize(("start", "end"), REFUSED, ids=[f"{a}-x->{b}" for a, b in REFUSED])
def test_every_other_move_is_refused_and_changes_nothing(start: Status, end: Status) -> None:
    record = proposal(start)
    with pytest.raises(InvalidTransition, match=f"from {start} to {end}"):
        record.move(end)
    assert record.status is start


@pytest.mark.parametrize("status", list(Status))
def test_a_status_may_stay_as_it_is(status: Status) -> None:
    record = proposal(status)
    record.move(status)
    assert record.status is status


def test_the_table_has_every_status_and_its_shape_matches_the_sets() -> None:
    assert set(TRANSITIONS) == set(Status)
    # A new proposal replaces exactly the records that are not open (inbox.proposals.start).
    assert {a for a, targets in TRANSITIONS.items() if Status.BUILDING in targets} == set(Status) - OPEN
    # Ended records lead nowhere else; every open one can be closed or merged by a human.
    assert all(TRANSITIONS[s] == {Status.BUILDING} for s in set(Status) - OPEN)
    assert all({Status.CLOSED, Status.MERGED} <= TRANSITIONS[s] for s in OPEN)
    assert WAITING <= OPEN
    assert GATED <= OPEN
    assert ENDED.isdisjoint(OPEN)
    # Only CI's verdict leaves a waiting status for the verified, not-reproduced or audit path.
    assert {a for a, t in TRANSITIONS.items() if Status.AUDITING in t} == {Status.AWAITING_FIX_CI}
    assert {a for a, t in TRANSITIONS.items() if Status.NOT_REPRODUCED in t} == {Status.AWAITING_TEST_CI}
    assert {a for a, t in TRANSITIONS.items() if Status.READY in t} == {Status.AUDITING}


def test_a_refused_move_is_permanent_for_the_worker() -> None:
    assert issubclass(InvalidTransition, PermanentError)
    assert not may_move(Status.MERGED, Status.REVISING)


def test_a_record_with_an_unknown_status_does_not_load() -> None:
    data = proposal(Status.READY).to_json()
    assert Proposal.from_json(data).status is Status.READY
    with pytest.raises(ValueError, match="'reddy' is not a valid Status"):
        Proposal.from_json({**data, "status": "reddy"})


def test_the_issue_comment_has_its_own_words_for_each_status_a_reader_sees() -> None:
    shown = set(Status) - {Status.REVISING, Status.SHADOW}  # never published with these
    for status in shown:
        assert f"Proposal #12: {status}." not in issue_comment(proposal(status)), status
    # The fallback, for the statuses no reader sees: what the check above would catch.
    assert "Proposal #12: revising." in issue_comment(proposal(Status.REVISING))


def test_flows_change_a_status_only_through_move() -> None:
    """`proposal.status = ...` would skip the table; only `Proposal.move` assigns it."""
    app = Path(__file__).resolve().parents[2] / "app"
    assigned = []
    for path in app.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            targets = node.targets if isinstance(node, ast.Assign) else []
            for target in targets:
                for t in target.elts if isinstance(target, ast.Tuple) else [target]:
                    if isinstance(t, ast.Attribute) and t.attr == "status":
                        assigned.append(f"{path.relative_to(app)}:{node.lineno}")
    assert assigned, "the walk finds Proposal's own assignments"
    assert [a for a in assigned if not a.startswith("policy/proposal.py:")] == []
