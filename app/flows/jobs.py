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


class TriageArgs(JobArgs):
    """`/autopack triage`: the issue as the command's webhook showed it."""

    issue: dict[str, Any]
    by_author: bool = False  # the issue's author, without triage rights, asked

    def thread(self) -> int:
        return int(self.issue["number"])


class AuditArgs(JobArgs):
    """`/autopack audit`, or a proposal's verified fix: the pull request is read afresh."""

    number: int

    def thread(self) -> int:
        return self.number


class DependencyArgs(JobArgs):
    """A Dependabot pull request to evaluate again (its CI reported, or never did)."""

    number: int

    def thread(self) -> int:
        return self.number


class ProposeArgs(JobArgs):
    """A proposal to start: by a command, by triage (`auto`) or by the digest."""

    issue: dict[str, Any]  # number, title, body, state, user (what the proposal needs of it)
    auto: bool = False
    force: bool = False
    notes: str = ""

    def thread(self) -> int:
        return int(self.issue["number"])


class DigestArgs(JobArgs):
    """The weekly digest of one repository (`week` as scheduled; a command's has none)."""

    week: str | None = None


class VerifyStepArgs(JobArgs):
    """A proposal's CI result for `sha` to read (an event, the no-CI check, the deadline), or its
    audit's verdict (`kind="audit"`)."""

    issue: int
    sha: str
    trigger: Literal["event", "no_ci_check", "deadline"] = "event"
    kind: Literal["ci", "audit"] = "ci"
    verdict: str | None = None
    findings: tuple[str, ...] = ()

    def thread(self) -> int:
        return self.issue


class ReviseArgs(JobArgs):
    """A revise round of a proposal, and what asked for it."""

    issue: int
    trigger: str = "command"  # "ci", "audit", "review" or "command"
    sha: str | None = None  # the fix commit CI failed
    findings: tuple[str, ...] = ()  # the audit's
    review_id: int | None = None
    review_body: str = ""
    instructions: str = ""  # the command's

    def thread(self) -> int:
        return self.issue


class GateCheckArgs(JobArgs):
    """The merge gate of a proposal's pull request, evaluated on its issue's subject."""

    issue: int

    def thread(self) -> int:
        return self.issue


async def queue(
    inbox: Inbox, flow: str, args: JobArgs, key: str, *, run_at: float | None = None
) -> int | None:
    """Queue `flow` with `args` on their subject, once per `key` (None: queued already)."""
    return await inbox.enqueue(flow, args.subject(), args=args.stored(), run_at=run_at, dedupe_key=key)
