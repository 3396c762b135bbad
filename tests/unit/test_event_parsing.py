"""Webhook payloads are validated against githubkit's models with one adapter per event name."""

from __future__ import annotations

import pytest
from githubkit import webhooks

from app.errors import PermanentError
from app.flows.dispatch import _event_adapter, parse_event
from app.policy.triage import analysis_schema
from tests.support import comment_payload, payload


def test_a_delivery_parses_to_the_model_githubkit_gives() -> None:
    data = comment_payload("/autopack help")
    ours = parse_event("issue_comment", data)
    assert type(ours) is type(webhooks.parse_obj("issue_comment", data))
    assert ours.comment.body == "/autopack help"


def test_the_adapter_is_built_once_per_event_name() -> None:
    assert _event_adapter("issue_comment") is _event_adapter("issue_comment")
    assert _event_adapter("issue_comment") is not _event_adapter("pull_request")


def test_an_unknown_event_and_a_payload_off_schema_are_permanent_errors() -> None:
    with pytest.raises(PermanentError, match="unknown event 'no_such_event'"):
        parse_event("no_such_event", {})
    broken = payload("issue_comment", "created.payload.json")
    del broken["comment"]
    with pytest.raises(PermanentError, match="does not match GitHub's schema"):
        parse_event("issue_comment", broken)


def test_the_triage_answer_schema_is_built_once_per_listing() -> None:
    first = analysis_schema(["app", "docs"], [3, 5])
    assert analysis_schema(["app", "docs"], [3, 5]) is first
    other = analysis_schema(["app"], [3, 5])
    assert other is not first
    assert set(other.model_json_schema()["properties"]["area"]["enum"]) == {"app", "unknown"}
