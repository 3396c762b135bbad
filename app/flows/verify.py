"""Fail-to-pass verification: CI events and scheduled checks move a proposal along.

`check_suite` / `check_run` / `status` on an `autopack/issue-<n>` branch → `verify` (no GitHub call:
if the proposal waits for that commit, queue a `verify_step` on the issue's subject, where all of a
proposal's jobs run one at a time) → `verify_step`: the commit's check runs and statuses → what CI
says (`policy.proposal.ci_outcome`) → the next step (`policy.proposal.next_step`) → carried out:
push the fix, audit the verified change, revise, hand over, or say it is not reproduced or
unverified. Scheduled checks (no CI after `no_ci_minutes`, unfinished after `ci_timeout_minutes`)
are the same job with a `run_at`, so a lost webhook only delays a decision.

The audit of a proposal's PR reports here too (`kind: audit`): a verified change that the audit does
not block is marked ready for review, its reviewers are requested and the issue gets the link.
"""

from __future__ import annotations

from app.events import CIEvent, ci_target
from app.flows import proposal_state as state
from app.flows.context import FlowContext
from app.flows.jobs import AuditArgs, ReviseArgs, ReviseTrigger, VerifyStepArgs
from app.flows.registry import Flow
from app.github import git
from app.github.repo import RepoClient
from app.metrics import PROPOSALS
from app.policy import proposal as policy
from app.policy.repo_policy import RepoPolicy

REVISE = "revise"


def accepts(event: CIEvent) -> bool:
    """Only CI results on Autopack's own branches."""
    sha, branches = ci_target(event)
    return bool(sha) and any(policy.issue_of_branch(b) is not None for b in branches)


async def route(ctx: FlowContext) -> None:
    """A CI event → the proposal's `verify_step`, if it waits for that commit."""
    if not isinstance(ctx.event, CIEvent):
        raise ctx.unexpected()
    sha, branches = ci_target(ctx.event)
    if sha is None or ctx.repository is None:
        return
    for branch in branches:
        issue = policy.issue_of_branch(branch)
        if issue is None:
            continue
        proposal = await state.store(ctx).get(ctx.repository, issue)
        if proposal is not None and proposal.status in policy.GATED and proposal.pr_number:
            # CI completed on a PR a human may have approved: the gate decides again.
            await state.queue_gate_check(ctx, proposal, f"ci-{ctx.delivery_id}")
            continue
        if proposal is None or proposal.status not in policy.OPEN:
            ctx.log.info("CI event on a branch without an open proposal", issue=issue, sha=sha)
            continue
        # Not (yet) the commit the record waits for: webhooks arrive out of order, and the branch
        # may have moved an instant before the record was read. The step reads the proposal and
        # GitHub's CI state when it runs, after the proposal's other jobs; a stale commit ends there.
        await ctx.enqueue(
            state.VERIFY_STEP,
            VerifyStepArgs(**state.where(proposal), issue=issue, sha=sha, trigger="event"),
            f"ci-event:{ctx.delivery_id}:{issue}",
        )


async def step(ctx: FlowContext) -> None:
    args = ctx.args_as(VerifyStepArgs)
    repo = await ctx.repo()
    proposal = await state.store(ctx).get(repo.full_name, args.issue)
    if proposal is None:
        return
    rules = (await ctx.policy()).policy
    if args.kind == "audit":
        await _audited(ctx, repo, proposal, rules, args.sha, str(args.verdict), list(args.findings))
        return
    sha = args.sha
    if proposal.waiting_sha != sha or proposal.status not in policy.WAITING:
        return  # decided already, or a newer commit is waited for
    runs, statuses = await git.ci_for(repo, sha)
    checks = policy.checks_from(runs, statuses, own_app_id=ctx.settings.app_id)
    phase = "test" if proposal.status == policy.Status.AWAITING_TEST_CI else "fix"
    if proposal.base_failing is None and any(c.state == "failed" for c in checks):
        proposal.base_failing = await _failing_on(ctx, repo, proposal.base_sha)
    tested = proposal.current("test")
    must_pass = (
        tested.deciding if phase == "fix" and tested is not None and tested.outcome == "failed" else []
    )
    read = policy.verdict(checks, base_failing=proposal.base_failing or (), must_pass=must_pass)
    outcome = read.outcome
    trigger: policy.Trigger = args.trigger
    decided = policy.next_step(proposal, sha, outcome, trigger, max_rounds=rules.proposals.max_rounds)
    current = proposal.current(phase)
    if current is not None:
        current.checks = checks
        if decided != "wait":
            current.outcome = outcome if outcome in ("failed", "passed", "none") else "timed_out"
            current.deciding = list(read.deciding)
    ctx.log.info("CI result", issue=proposal.issue, sha=sha, outcome=outcome, step=decided, trigger=trigger)
    if decided == "wait":
        if trigger == "no_ci_check":
            assert proposal.pushed_at is not None
            at = proposal.pushed_at + rules.proposals.ci_timeout_minutes * 60
            await state.schedule_check(ctx, proposal, sha, "deadline", at)
        await state.store(ctx).save(proposal)
        return
    PROPOSALS.labels(decided).inc()
    if decided == "push_fix":
        assert proposal.fix_sha is not None
        await state.wait_for_ci(ctx, repo, proposal, proposal.fix_sha, "fix", rules.proposals.no_ci_minutes)
    elif decided == "push_fix_unverified":
        assert proposal.fix_sha is not None
        await git.set_branch(repo, proposal.branch, proposal.fix_sha, exists=True)
        proposal.move(policy.Status.UNVERIFIED)
        proposal.waiting_sha = None
        _end_round(proposal, "unverified: no CI result")
        await _audit(ctx, proposal)
    elif decided == "verified":
        proposal.move(policy.Status.AUDITING)
        proposal.waiting_sha = None
        _end_round(proposal, "verified")
        await _audit(ctx, proposal)
    elif decided == "not_reproduced":
        proposal.move(policy.Status.NOT_REPRODUCED)
        proposal.waiting_sha = None
        _end_round(proposal, "not reproduced")
    elif decided == "unverified":
        proposal.move(policy.Status.UNVERIFIED)
        proposal.waiting_sha = None
        _end_round(proposal, "unverified: no CI result on the fix")
        await _audit(ctx, proposal)
    elif decided == "revise":
        proposal.move(policy.Status.REVISING)
        proposal.waiting_sha = None
        _end_round(proposal, "fix failed CI")
        await queue_revise(ctx, proposal, "ci", sha=sha)
    elif decided == "hand_over":
        proposal.move(policy.Status.HANDED_OVER)
        proposal.waiting_sha = None
        _end_round(proposal, "fix failed CI")
    await state.publish(ctx, repo, proposal)


async def _failing_on(ctx: FlowContext, repo: RepoClient, sha: str) -> list[str]:
    """The checks red on the base commit: a failure there is not evidence about this change."""
    if not sha:
        return []
    runs, statuses = await git.ci_for(repo, sha)
    checks = policy.checks_from(runs, statuses, own_app_id=ctx.settings.app_id)
    return sorted(c.name for c in checks if c.state == "failed")


def _end_round(proposal: policy.Proposal, outcome: str) -> None:
    if proposal.rounds:
        proposal.rounds[-1].outcome = outcome


async def _audit(ctx: FlowContext, proposal: policy.Proposal) -> None:
    """The audit of the fix commit (the PR is a draft, so it is asked for, not triggered)."""
    assert proposal.pr_number is not None
    await ctx.enqueue(
        "audit",
        AuditArgs(**state.where(proposal), forced=True, number=proposal.pr_number),
        f"audit:{proposal.repository}#{proposal.pr_number}:{proposal.fix_sha}",
    )


async def queue_revise(
    ctx: FlowContext,
    proposal: policy.Proposal,
    trigger: ReviseTrigger,
    *,
    key: str | None = None,
    sha: str | None = None,
    findings: tuple[str, ...] = (),
    review_id: int | None = None,
    review_body: str = "",
    instructions: str = "",
) -> None:
    """A revise round of `proposal`, once per round and cause (`key`, else the trigger)."""
    args = ReviseArgs(
        **state.where(proposal),
        issue=proposal.issue,
        trigger=trigger,
        sha=sha,
        findings=findings,
        review_id=review_id,
        review_body=review_body,
        instructions=instructions,
    )
    await ctx.enqueue(
        REVISE, args, f"revise:{proposal.repository}#{proposal.issue}:{proposal.round}:{key or trigger}"
    )


async def _audited(
    ctx: FlowContext,
    repo: RepoClient,
    proposal: policy.Proposal,
    rules: RepoPolicy,
    sha: str,
    verdict: str,
    findings: list[str],
) -> None:
    if proposal.fix_sha != sha or proposal.status not in (policy.Status.AUDITING, policy.Status.UNVERIFIED):
        return
    proposal.audit_verdict = verdict
    if proposal.status == policy.Status.AUDITING:
        if verdict == "block":
            if proposal.round < rules.proposals.max_rounds:
                proposal.move(policy.Status.REVISING)
                await queue_revise(ctx, proposal, "audit", findings=tuple(findings[:20]))
            else:
                proposal.move(policy.Status.HANDED_OVER)
            PROPOSALS.labels("audit_blocked").inc()
        else:
            if proposal.pr_node_id:
                await git.mark_ready(repo, proposal.pr_node_id)
            assert proposal.pr_number is not None
            await git.request_reviewers(
                repo, proposal.pr_number, rules.proposals.reviewers, rules.proposals.team_reviewers
            )
            proposal.move(policy.Status.READY)
            PROPOSALS.labels("ready").inc()
    await state.publish(ctx, repo, proposal)
    if proposal.status in policy.GATED:
        await state.queue_gate_check(ctx, proposal, f"audited-{sha}")


FLOW = Flow(
    name="verify",
    triggers=frozenset({("check_suite", "completed"), ("check_run", "completed"), ("status", None)}),
    handler=route,
    accepts=accepts,
    section="proposals",
)
STEP_FLOW = Flow(
    name=state.VERIFY_STEP, triggers=frozenset(), handler=step, section="proposals", args=VerifyStepArgs
)
