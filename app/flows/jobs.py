"""What a scheduled job carries: one typed model per flow that runs without a delivery of its own.

A job queued by a flow (`FlowContext.enqueue`) or by the scheduler (`queue`) names its flow, its
args and a dedupe key. The dispatcher parses the stored args into the flow's model once
(`Flow.args`), so a handler reads `ctx.args` as typed fields, never a raw dict. Where a job runs —
installation, repository, default branch — is common to all of them, and `FlowContext.enqueue`
fills it in from the job that queues it. Each model also says which subject its job runs on (one
running job per subject): its issue or pull request, or the repository.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from app.events import Issue
from app.inbox.store import Inbox


class JobArgs(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    installation_id: int | None = None
    repository: str | None = None
    default_branch: str | None = None
    forced: bool = False  # asked for by a command: the policy's automatic settings do not skip it

    def thread(self) -> int | None:
        """The issue or pull request the job is about (None: the repository as a whole)."""
        return None

    def subject(self) -> str:
        number = self.thread()
        return f"{self.repository}#{number}" if number is not None else str(self.repository)

    def stored(self) -> dict[str, Any]:
        """The JSON the inbox keeps (fields at their defaults are left out)."""
        return self.model_dump(mode="json", exclude_defaults=True)


class OnIssue(JobArgs):
    """A job about one of a proposal's issues: it runs on the issue's subject."""

    issue: int

    def thread(self) -> int:
        return self.issue


class OnPull(JobArgs):
    """A job about a pull request, read afresh when it runs."""

    number: int

    def thread(self) -> int:
        return self.number


class OnIssueObject(JobArgs):
    """A job that starts from an issue as a webhook (or the digest) showed it."""

    issue: Issue

    def thread(self) -> int:
        return self.issue.number


class TriageArgs(OnIssueObject):
    """`/autopack triage`: the issue as the command's webhook showed it."""

    by_author: bool = False  # the issue's author, without triage rights, asked


class AuditArgs(OnPull):
    """`/autopack audit`, or a proposal's verified fix."""


class DependencyArgs(OnPull):
    """A Dependabot pull request to evaluate again (its CI reported, or never did)."""


class ProposeArgs(OnIssueObject):
    """A proposal to start: by a command, by triage (`auto`) or by the digest."""

    auto: bool = False
    force: bool = False
    notes: str = ""


class DigestArgs(JobArgs):
    """The weekly digest of one repository (`week` as scheduled; a command's has none)."""

    week: str | None = None


class VerifyStepArgs(OnIssue):
    """A proposal's CI result for `sha` to read (an event, the no-CI check, the deadline), or its
    audit's verdict (`kind="audit"`)."""

    sha: str
    trigger: Literal["event", "no_ci_check", "deadline"] = "event"
    kind: Literal["ci", "audit"] = "ci"
    verdict: str | None = None
    findings: tuple[str, ...] = ()


ReviseTrigger = Literal["ci", "audit", "review", "command"]


class ReviseArgs(OnIssue):
    """A revise round of a proposal, and what asked for it."""

    trigger: ReviseTrigger = "command"
    sha: str | None = None  # the fix commit CI failed
    findings: tuple[str, ...] = ()  # the audit's
    review_id: int | None = None
    review_body: str = ""
    instructions: str = ""  # the command's


class GateCheckArgs(OnIssue):
    """The merge gate of a proposal's pull request, evaluated on its issue's subject."""


async def queue(
    inbox: Inbox, flow: str, args: JobArgs, key: str, *, run_at: float | None = None
) -> int | None:
    """Queue `flow` with `args` on their subject, once per `key` (None: queued already)."""
    return await inbox.enqueue(flow, args.subject(), args=args.stored(), run_at=run_at, dedupe_key=key)
