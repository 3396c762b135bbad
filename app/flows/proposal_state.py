"""A proposal's record and what the world sees of it, kept in step: the database row, the PR body
(rendered whole from the record) and the one comment on the feedback issue."""

from __future__ import annotations

from app.flows.context import FlowContext
from app.github import git
from app.github.repo import RepoClient
from app.inbox.proposals import Proposals
from app.policy import proposal as policy

VERIFY_STEP = "verify_step"


def store(ctx: FlowContext) -> Proposals:
    return Proposals(ctx.inbox.db, clock=ctx.inbox.clock)


def subject(proposal: policy.Proposal) -> str:
    """Every job of a proposal runs on its issue's subject, so they never run concurrently."""
    return f"{proposal.repository}#{proposal.issue}"


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


async def schedule_check(
    ctx: FlowContext, proposal: policy.Proposal, sha: str, trigger: policy.Trigger, at: float
) -> None:
    """A CI check for `sha` at `at` (a job with a run_at, never a sleeping worker)."""
    await ctx.inbox.enqueue(
        VERIFY_STEP,
        subject(proposal),
        args={
            "installation_id": proposal.installation_id,
            "repository": proposal.repository,
            "issue": proposal.issue,
            "sha": sha,
            "trigger": trigger,
        },
        run_at=at,
        dedupe_key=f"ci-{trigger}:{proposal.repository}#{proposal.issue}:{sha}",
    )


async def wait_for_ci(
    ctx: FlowContext, repo: RepoClient, proposal: policy.Proposal, sha: str, phase: str, no_ci_minutes: int
) -> None:
    """Move the branch to `sha` and wait for its CI: the no-CI check is scheduled now."""
    await git.set_branch(repo, proposal.branch, sha, exists=proposal.pr_number is not None)
    now = ctx.inbox.clock()
    proposal.status = "awaiting_test_ci" if phase == "test" else "awaiting_fix_ci"
    proposal.waiting_sha = sha
    proposal.pushed_at = now
    proposal.verification.append(policy.Verification(phase, sha))  # type: ignore[arg-type]
    await schedule_check(ctx, proposal, sha, "no_ci_check", now + no_ci_minutes * 60)
