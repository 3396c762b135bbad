"""A proposal's record and what the world sees of it, kept in step: the database row, the PR body
(rendered whole from the record) and the one comment on the feedback issue."""

from __future__ import annotations

from typing import Any

from app.flows.context import FlowContext
from app.flows.jobs import GateCheckArgs, VerifyStepArgs
from app.github import git
from app.github.repo import RepoClient
from app.inbox.proposals import Proposals
from app.policy import proposal as policy

VERIFY_STEP = "verify_step"
GATE_CHECK = "gate_check"


def store(ctx: FlowContext) -> Proposals:
    return Proposals(ctx.inbox.db, clock=ctx.inbox.clock)


def subject(proposal: policy.Proposal) -> str:
    """Every job of a proposal runs on its issue's subject, so they never run concurrently."""
    return f"{proposal.repository}#{proposal.issue}"


def where(proposal: policy.Proposal) -> dict[str, Any]:
    """Where a proposal's jobs run: its installation and repository, its base branch's policy."""
    return {
        "installation_id": proposal.installation_id,
        "repository": proposal.repository,
        "default_branch": proposal.base_branch,
    }


async def publish(
    ctx: FlowContext, repo: RepoClient, proposal: policy.Proposal, *, body: bool = True
) -> None:
    """Save the record, then show it: the PR body and the issue's proposal comment (edited in place)."""
    await store(ctx).save(proposal)
    if body and proposal.pr_number:
        await git.update_pull(
            repo, proposal.pr_number, body=policy.render_body(proposal), title=proposal.title
        )
    proposal.comment_id = await repo.upsert_comment(
        proposal.issue, "proposal", policy.issue_comment(proposal), known_id=proposal.comment_id
    )
    await store(ctx).save(proposal)
    if proposal.gate_comment_id and proposal.status not in policy.GATED | {policy.Status.MERGED}:
        # The head is about to move (a revision) or the PR closed: the gate's last word is stale.
        line = (
            "the pull request is closed"
            if proposal.status == policy.Status.CLOSED
            else "Autopack's revision to be verified by CI and audited"
        )
        shown = line if proposal.status == policy.Status.CLOSED else f"waiting for: {line}"
        await show_gate(ctx, repo, proposal, shown)


async def show_gate(ctx: FlowContext, repo: RepoClient, proposal: policy.Proposal, line: str) -> None:
    """The PR's gate comment, edited in place and only when the state changed."""
    if line == proposal.gate_status or not proposal.pr_number:
        return
    proposal.gate_comment_id = await repo.upsert_comment(
        proposal.pr_number,
        "gate",
        f"**Autopack merge gate:** {line}\n\n"
        "Autopack merges only when a writer approved the current head commit, no writer requests "
        "changes, checks are green and the audit does not block.",
        known_id=proposal.gate_comment_id,
    )
    proposal.gate_status = line
    await store(ctx).save(proposal)


async def schedule_check(
    ctx: FlowContext, proposal: policy.Proposal, sha: str, trigger: policy.Trigger, at: float
) -> None:
    """A CI check for `sha` at `at` (a job with a run_at, never a sleeping worker)."""
    await ctx.enqueue(
        VERIFY_STEP,
        VerifyStepArgs(**where(proposal), issue=proposal.issue, sha=sha, trigger=trigger),
        f"ci-{trigger}:{proposal.repository}#{proposal.issue}:{sha}",
        run_at=at,
    )


async def wait_for_ci(
    ctx: FlowContext, repo: RepoClient, proposal: policy.Proposal, sha: str, phase: str, no_ci_minutes: int
) -> None:
    """Record that the proposal waits for `sha`'s CI, then move the branch there (a fast CI result
    finds the record; a proposal closed meanwhile fails the compare-and-set and nothing is pushed)
    and schedule the no-CI check."""
    now = ctx.inbox.clock()
    proposal.move(policy.Status.AWAITING_TEST_CI if phase == "test" else policy.Status.AWAITING_FIX_CI)
    proposal.waiting_sha = sha
    proposal.pushed_at = now
    proposal.verification.append(policy.Verification(phase, sha))  # type: ignore[arg-type]
    await store(ctx).save(proposal)
    await git.set_branch(repo, proposal.branch, sha, exists=proposal.pr_number is not None)
    await schedule_check(ctx, proposal, sha, "no_ci_check", now + no_ci_minutes * 60)


async def queue_gate_check(ctx: FlowContext, proposal: policy.Proposal, key: str) -> None:
    """Evaluate the merge gate (app.flows.gate) on the issue's subject; `key` makes it once per cause."""
    await ctx.enqueue(
        GATE_CHECK,
        GateCheckArgs(**where(proposal), issue=proposal.issue),
        f"gate:{proposal.repository}#{proposal.issue}:{key}",
    )
