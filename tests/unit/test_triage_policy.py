"""Triage decisions without a model: screening, labels, the comment, the per-issue schema."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from app.events import Issue
from app.policy.repo_policy import DEFAULTS, parse
from app.policy.triage import (
    History,
    analysis_schema,
    body_hash,
    labels_for,
    materially_changed,
    neutral,
    render_comment,
    screen,
)

FRESH = History(None, None, 0)


def issue(**changes: Any) -> Issue:
    base = {
        "number": 1,
        "state": "open",
        "locked": False,
        "body": "It crashes when saving.",
        "user": {"login": "ann", "type": "User"},
        "labels": [{"name": "user-feedback"}],
    }
    return Issue.model_validate({**base, **changes})


@pytest.mark.parametrize(
    ("data", "action", "label", "history", "forced", "reason"),
    [
        (issue(), "opened", None, FRESH, False, "triage"),
        (issue(), "labeled", "user-feedback", FRESH, False, "triage"),
        (issue(), "labeled", "bug", FRESH, False, "another label"),
        (issue(labels=[{"name": "bug"}]), "opened", None, FRESH, False, "not feedback"),
        (issue(labels=[]), "opened", None, FRESH, True, "triage"),  # /autopack triage
        (issue(state="closed"), "opened", None, FRESH, True, "closed"),
        (issue(locked=True), "opened", None, FRESH, False, "locked"),
        (issue(user={"login": "renovate[bot]", "type": "Bot"}), "opened", None, FRESH, True, "bot author"),
        (issue(pull_request={}), "opened", None, FRESH, True, "pull request"),
        (
            issue(),
            "opened",
            None,
            History(body_hash("It crashes when saving."), "x", 0),
            False,
            "already triaged for this body",
        ),
        (
            issue(body="It  crashes when saving.<!-- x -->"),
            "labeled",
            "user-feedback",
            History(body_hash("It crashes when saving."), "x", 0),
            False,
            "already triaged for this body",
        ),
        (issue(), "opened", None, History(None, None, 5), False, "reporter rate limit"),
        (issue(), "opened", None, History(None, None, 5), True, "triage"),  # asked for explicitly
        (issue(), "edited", None, FRESH, False, "edits not triaged"),
    ],
)
def test_screen(
    data: Issue, action: str, label: str | None, history: History, forced: bool, reason: str
) -> None:
    assert (
        screen(data, action=action, label=label, policy=DEFAULTS, history=history, forced=forced).reason
        == reason
    )


def test_edits_need_the_setting_and_a_material_change() -> None:
    policy = parse("feedback: {triage_on_edit: true}\n")
    old = "It crashes when saving a project with many files."
    typo = History(body_hash(old), old, 0)
    assert (
        screen(issue(body=old + "!"), action="edited", label=None, policy=policy, history=typo).reason
        == "edit not material"
    )
    assert (
        screen(
            issue(body="Export to PDF drops all images."),
            action="edited",
            label=None,
            policy=policy,
            history=typo,
        ).reason
        == "triage"
    )
    assert materially_changed("a b c", "x y z")
    assert not materially_changed("Saving fails.", "Saving  fails!")


def test_custom_label_from_policy() -> None:
    policy = parse("feedback: {label: customer-voice}\n")
    assert screen(issue(), action="opened", label=None, policy=policy, history=FRESH).reason == "not feedback"
    assert (
        screen(
            issue(labels=[{"name": "customer-voice"}]),
            action="opened",
            label=None,
            policy=policy,
            history=FRESH,
        ).reason
        == "triage"
    )


def answer(**changes: Any) -> dict[str, Any]:
    return {
        "category": "performance",
        "severity": "medium",
        "area": "web",
        "summary": "Slow.",
        "warranted": False,
        "confidence": 0.5,
        "reasons": [],
        "questions": [],
        "duplicates": [],
        **changes,
    }


def test_schema_only_accepts_listed_areas_and_duplicates() -> None:
    schema = analysis_schema(["app", "web"], [4, 9])
    assert schema.model_validate(answer(duplicates=[9])).duplicates == [9]  # type: ignore[attr-defined]
    for bad in (
        answer(area="kernel"),
        answer(duplicates=[5]),
        answer(category="security"),
        answer(severity="p0"),
    ):
        with pytest.raises(ValidationError):
            schema.model_validate(bad)
    empty = analysis_schema([], [])
    assert empty.model_validate(answer(area="unknown")).area == "unknown"  # type: ignore[attr-defined]
    with pytest.raises(ValidationError):
        empty.model_validate(answer(area="unknown", duplicates=[1]))


def test_labels_come_from_the_enums() -> None:
    schema = analysis_schema(["web"], [4])
    value = schema.model_validate(answer(questions=["Which browser?"], duplicates=[4]))
    assert [label.name for label in labels_for(value)] == [
        "type:performance",
        "severity:medium",
        "area:web",
        "autopack:triaged",
        "autopack:needs-info",
        "autopack:duplicate",
    ]
    assert [label.name for label in labels_for(schema.model_validate(answer(area="unknown")))] == [
        "type:performance",
        "severity:medium",
        "autopack:triaged",
    ]


@pytest.mark.parametrize(
    ("raw", "must_not_contain"),
    [
        ("ping @octo-org/admins now", "@octo-org"),
        ("see ![img](https://evil.example/p.png)", "https://"),
        ("click [here](https://evil.example)", "](https"),
        ("<img src=x onerror=alert(1)> hi", "<img"),
        ("line one\n\n# Heading injected", "\n"),
    ],
)
def test_model_text_is_neutralised(raw: str, must_not_contain: str) -> None:
    assert must_not_contain not in neutral(raw)


def test_comment_is_short_with_details_collapsed() -> None:
    schema = analysis_schema(["web"], [4])
    value = schema.model_validate(
        answer(warranted=True, confidence=0.95, duplicates=[4], reasons=["Clear repro."])
    )
    text = render_comment(
        value,
        policy=DEFAULTS,
        model="gpt-6-luna",
        tokens=900,
        cost=0.0012,
        notes=("openai is past its soft budget limit",),
    )
    assert text.splitlines()[0] == "**Autopack triage:** performance · severity **medium** · area `web`"
    assert "Possibly a duplicate of #4." in text
    assert "`/autopack propose`" in text
    assert text.index("<details>") > text.index("Slow.")
    assert "gpt-6-luna" in text.split("<details>")[1]
    assert "soft budget limit" in text
    low = render_comment(
        schema.model_validate(answer(warranted=True, confidence=0.5)),
        policy=DEFAULTS,
        model="m",
        tokens=1,
        cost=0,
    )
    assert "/autopack propose" not in low  # under proposals.min_confidence
    assert json.dumps(text)  # plain text, postable
