"""Scheduled jobs carry typed args (app.flows.jobs): each model names its subject, stores only
what differs from its defaults, and refuses a key it does not know; the dispatcher turns args
that do not fit into a permanent failure; `FlowContext.enqueue` fills in where the job runs."""

from __future__ import annotations

import pytest
import structlog

from app.errors import PermanentError
from app.events import Event, IssueCommentEvent, PushEvent, Repository
from app.flows.context import FlowContext
from app.flows.dispatch import parse_args
from app.flows.jobs import (
    AuditArgs,
    DigestArgs,
    GateCheckArgs,
    JobArgs,
    ProposeArgs,
    ReviseArgs,
    TriageArgs,
    VerifyStepArgs,
)
from app.flows.registry import default_registry
from app.inbox.models import Job
from app.inbox.store import Inbox
from app.settings import Settings
from tests.component.harness import Harness
from tests.fake_github import FakeGitHub
from tests.support import comment_payload

REPO = "octo-org/widgets"


@pytest.mark.parametrize(
    ("args", "subject"),
    [
        (TriageArgs(repository=REPO, issue={"number": 7, "title": "t"}), f"{REPO}#7"),
        (AuditArgs(repository=REPO, number=12), f"{REPO}#12"),
        (ProposeArgs(repository=REPO, issue={"number": 7}), f"{REPO}#7"),
        (VerifyStepArgs(repository=REPO, issue=7, sha="a" * 40), f"{REPO}#7"),
        (ReviseArgs(repository=REPO, issue=7), f"{REPO}#7"),
        (GateCheckArgs(repository=REPO, issue=7), f"{REPO}#7"),
        (DigestArgs(repository=REPO, week="2026-W49"), REPO),
    ],
)
def test_each_job_runs_on_its_thread_or_its_repository(args: JobArgs, subject: str) -> None:
    assert args.subject() == subject


def test_stored_args_leave_defaults_out_and_read_back_the_same() -> None:
    args = VerifyStepArgs(
        installation_id=1, repository=REPO, issue=7, sha="f1", kind="audit", findings=("x",)
    )
    stored = args.stored()
    assert stored == {
        "installation_id": 1,
        "repository": REPO,
        "issue": 7,
        "sha": "f1",
        "kind": "audit",
        "findings": ["x"],
    }
    assert VerifyStepArgs.model_validate(stored) == args


def test_a_misspelt_key_is_refused_where_the_job_is_made() -> None:
    with pytest.raises(ValueError, match="instruction"):
        ReviseArgs.model_validate({"issue": 7, "instruction": "typo"})


def test_args_that_do_not_fit_their_flow_fail_the_job_for_good() -> None:
    flow = default_registry().get("verify_step")
    assert flow is not None
    assert parse_args(flow, {"repository": REPO, "issue": 7, "sha": "f1"}).subject() == f"{REPO}#7"
    with pytest.raises(
        PermanentError, match=r"verify_step job args do not fit VerifyStepArgs \(first at sha"
    ):
        parse_args(flow, {"repository": REPO, "issue": 7})


def context(inbox: Inbox, **kw: object) -> FlowContext:
    job = Job(
        1, "command", f"{REPO}#7", None, {}, "running", 1, 8, 0, 0.0, 0.0, None, None, None, None, None, None
    )
    fields: dict[str, object] = {
        "job": job,
        "event_name": "issue_comment",
        "action": "created",
        "event": Event(repository=Repository(full_name=REPO, default_branch="develop")),
        "delivery_id": "d1",
        "installation_id": 42,
        "repository": REPO,
        "inbox": inbox,
        "github": None,
        "settings": Settings.model_construct(),
        "log": structlog.get_logger(),
        **kw,
    }
    return FlowContext(**fields)  # type: ignore[arg-type]


async def test_enqueue_fills_in_where_the_job_runs_and_keeps_what_args_name() -> None:
    inbox = Inbox.open("sqlite:///:memory:")
    await inbox.migrate()
    ctx = context(inbox)
    first = await ctx.enqueue("audit", AuditArgs(number=12, forced=True), "audit:once")
    assert first is not None
    assert await ctx.enqueue("audit", AuditArgs(number=12), "audit:once") is None  # the key dedupes
    job = await inbox.get_job(first)
    assert job is not None
    assert (job.flow, job.subject) == ("audit", f"{REPO}#12")
    assert job.args == {
        "installation_id": 42,
        "repository": REPO,
        "default_branch": "develop",
        "forced": True,
        "number": 12,
    }
    named = await ctx.enqueue("gate_check", GateCheckArgs(issue=7, default_branch="release"), "gate:1")
    assert named is not None
    gate = await inbox.get_job(named)
    assert gate is not None
    assert gate.args["default_branch"] == "release"
    # The job it makes reads its args back as its flow's model.
    scheduled = context(inbox, event=None, args=GateCheckArgs.model_validate(gate.args))
    assert scheduled.default_branch == "release"
    assert scheduled.args_as(GateCheckArgs).issue == 7
    with pytest.raises(PermanentError, match="runs with AuditArgs, not GateCheckArgs"):
        scheduled.args_as(AuditArgs)
    inbox.close()


@pytest.mark.parametrize(
    ("flow", "stored"),
    [
        (
            "triage",
            {
                "forced": True,
                "installation_id": 1,
                "repository": REPO,
                "default_branch": None,
                "issue": {"number": 7},
                "by_author": True,
            },
        ),
        (
            "audit",
            {
                "forced": True,
                "installation_id": 1,
                "repository": REPO,
                "default_branch": "main",
                "number": 12,
            },
        ),
        (
            "propose",
            {
                "installation_id": 1,
                "repository": REPO,
                "default_branch": "main",
                "issue": {"number": 7},
                "auto": True,
            },
        ),
        (
            "propose",
            {
                "forced": True,
                "installation_id": 1,
                "repository": REPO,
                "issue": {"number": 7},
                "notes": "n",
                "force": False,
            },
        ),
        ("digest", {"installation_id": 1, "repository": REPO, "week": "2026-W49"}),
        (
            "verify_step",
            {"installation_id": 1, "repository": REPO, "issue": 7, "sha": "f1", "trigger": "deadline"},
        ),
        (
            "verify_step",
            {
                "installation_id": 1,
                "repository": REPO,
                "issue": 7,
                "kind": "audit",
                "sha": "f1",
                "verdict": "block",
                "findings": ["high a.py:1-2 x"],
            },
        ),
        (
            "revise",
            {
                "installation_id": 1,
                "repository": REPO,
                "default_branch": "main",
                "issue": 7,
                "trigger": "review",
                "review_id": 5,
                "review_body": "b",
            },
        ),
        ("gate_check", {"installation_id": 1, "repository": REPO, "default_branch": "main", "issue": 7}),
        ("dependencies", {"installation_id": 1, "repository": REPO, "number": 12}),
    ],
)
def test_jobs_queued_by_the_previous_release_still_parse(flow: str, stored: dict[str, object]) -> None:
    """An upgrade finds jobs queued with the hand-built dicts of before: each fits its model."""
    found = default_registry().get(flow)
    assert found is not None
    args = parse_args(found, stored)
    assert args.installation_id == 1
    assert args.subject().startswith(REPO)


async def test_a_flow_given_an_event_it_does_not_handle_fails_permanently() -> None:
    """`ctx.event_as` is the one check between the registry's triggers and a handler's reads."""
    inbox = Inbox.open("sqlite:///:memory:")
    await inbox.migrate()
    comment = IssueCommentEvent.model_validate(comment_payload("/autopack help"))
    ctx = context(inbox, event=comment)
    assert ctx.event_as(IssueCommentEvent) is comment  # positive control
    with pytest.raises(PermanentError, match="command does not run on IssueCommentEvent"):
        ctx.event_as(PushEvent)
    with pytest.raises(PermanentError, match="does not run on a scheduled job"):
        context(inbox, event=None).event_as(IssueCommentEvent)
    inbox.close()


async def test_a_job_stored_without_its_default_branch_reads_the_policy_from_it(
    harness: Harness, fake_github: FakeGitHub
) -> None:
    """A job queued by the previous release carried no default branch, and `ctx.default_branch`
    fell back to `main`: the dispatcher asks GitHub before the flow's mode is read from the policy.
    Positive control: a job that names its branch asks nothing."""
    fake_github.default_branch = "develop"
    stored = {"installation_id": 4242, "repository": "octo-org/widgets", "issue": 7}
    await harness.inbox.enqueue("gate_check", "octo-org/widgets#7", args=stored, dedupe_key="old")
    await harness.run_all()
    heads = [line for line in fake_github.log if "/commits/" in line]
    assert "GET /repos/octo-org/widgets/commits/develop" in heads
    assert "GET /repos/octo-org/widgets/commits/main" not in heads
    fake_github.log.clear()
    named = {**stored, "default_branch": "release"}
    await harness.inbox.enqueue("gate_check", "octo-org/widgets#7", args=named, dedupe_key="new")
    await harness.run_all()
    assert "GET /repos/octo-org/widgets" not in fake_github.log
    assert "GET /repos/octo-org/widgets/commits/release" in fake_github.log
