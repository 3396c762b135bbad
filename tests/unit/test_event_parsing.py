"""Webhook payloads parse into Autopack's narrow event models (`app.events`) once, in dispatch."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app import events
from app.errors import PermanentError
from app.flows.registry import default_registry
from app.policy.triage import analysis_schema
from tests.support import comment_payload, payload


def test_every_event_a_flow_handles_has_a_model() -> None:
    assert default_registry().events() <= set(events.EVENTS)


def test_the_fields_a_flow_reads_come_through() -> None:
    comment = events.parse("issue_comment", comment_payload("/autopack help", login="ann"))
    assert isinstance(comment, events.IssueCommentEvent)
    assert (comment.comment.body, comment.comment.author) == ("/autopack help", "ann")
    opened = events.parse("pull_request", payload("pull_request", "opened.payload.json"))
    assert isinstance(opened, events.PullRequestEvent)
    raw = payload("pull_request", "opened.payload.json")["pull_request"]
    assert (opened.pull_request.number, opened.pull_request.head.sha) == (raw["number"], raw["head"]["sha"])
    assert opened.pull_request.as_issue().is_pull
    push = events.parse("push", payload("push", "with-new-branch.payload.json"))
    assert isinstance(push, events.PushEvent)
    assert push.ref.startswith("refs/heads/")


def test_ci_events_name_their_commit_and_branches() -> None:
    suite = events.parse("check_suite", payload("check_suite", "completed.payload.json"))
    run = events.parse("check_run", payload("check_run", "completed.payload.json"))
    status = events.parse("status", payload("status"))
    raw = payload("status")
    raw_suite = payload("check_suite", "completed.payload.json")["check_suite"]
    raw_run = payload("check_run", "completed.payload.json")["check_run"]
    assert isinstance(suite, events.CheckSuiteEvent)
    assert isinstance(run, events.CheckRunEvent)
    assert isinstance(status, events.StatusEvent)
    assert events.ci_target(suite) == (raw_suite["head_sha"], (raw_suite["head_branch"],))
    assert events.ci_target(run) == (raw_run["head_sha"], (raw_run["check_suite"]["head_branch"],))
    assert events.ci_target(status) == (raw["sha"], tuple(b["name"] for b in raw["branches"]))
    assert events.ci_pulls(suite) == tuple(p["number"] for p in raw_suite["pull_requests"])
    assert events.ci_pulls(status) == ()


def test_an_unknown_event_and_a_payload_without_what_autopack_reads_are_permanent_errors() -> None:
    with pytest.raises(PermanentError, match="unknown event 'no_such_event'"):
        events.parse("no_such_event", {})
    broken = payload("issue_comment", "created.payload.json")
    del broken["comment"]
    with pytest.raises(PermanentError, match=r"does not match GitHub's schema .*first at comment"):
        events.parse("issue_comment", broken)
    wrong_type = payload("issue_comment", "created.payload.json")
    wrong_type["comment"]["body"] = {"not": "text"}
    with pytest.raises(PermanentError, match=r"comment\.body"):
        events.parse("issue_comment", wrong_type)


def test_a_pull_request_without_its_state_is_refused_not_read_as_open() -> None:
    """Dependabot's merge and the audit act only on open pull requests: a missing state must not
    default to one."""
    opened = payload("pull_request", "opened.payload.json")
    assert events.parse("pull_request", opened).pull_request.state == "open"  # type: ignore[attr-defined]
    del opened["pull_request"]["state"]
    with pytest.raises(PermanentError, match=r"first at pull_request\.state"):
        events.parse("pull_request", opened)


def test_fields_autopack_does_not_read_are_ignored_and_the_model_is_frozen() -> None:
    data = comment_payload("/autopack help")
    data["comment"]["reactions"] = "a shape GitHub may change"
    data["comment"]["user"] = {"login": "ann", "type": "User"}  # thin: only what is read
    parsed = events.parse("issue_comment", data)
    assert isinstance(parsed, events.IssueCommentEvent)
    with pytest.raises(ValidationError):
        parsed.comment.body = "edited on the way"  # type: ignore[misc]


def test_the_triage_answer_schema_is_built_once_per_listing() -> None:
    first = analysis_schema(["app", "docs"], [3, 5])
    assert analysis_schema(["app", "docs"], [3, 5]) is first
    other = analysis_schema(["app"], [3, 5])
    assert other is not first
    assert set(other.model_json_schema()["properties"]["area"]["enum"]) == {"app", "unknown"}
