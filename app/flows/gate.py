"""The human gate on Autopack's pull requests: reviews → merge or revise; closing → a remembered rejection.

`pull_request_review` (submitted, dismissed) on an `autopack/issue-<n>` PR → `gate`:
changes requested by a writer start a revise round; any review queues a `gate_check` on the issue's
subject (where all of a proposal's jobs run one at a time). CI completing on a gated PR queues one
too (`app.flows.verify.route`), and so does a proposal becoming ready.

`gate_check`: the PR, its reviews, each reviewer's permission now, the head's checks, the audit's
verdict on the head, the base branch's required checks → `policy.gate.decide` → the PR's gate
comment shows the state; on "merge", merge with `sha=<head>` (a 405/409 means re-evaluate, never a
blind retry), then tell the feedback issue where it shipped, label it `autopack:shipped` and delete
the branch when the policy says so.

`pull_request.closed` unmerged, or `/autopack reject <reason>` → the rejection is recorded (issue,
PR, reason, who, area, what the change was), the issue is labelled `autopack:rejected`; a new
proposal needs `--force`, and later proposals in the area are told the reason.
"""

from __future__ import annotations

from githubkit.exception import RequestFailed

from app.events import PullRequest, PullRequestEvent, ReviewEvent, by_bot
from app.flows import proposal_state as state
from app.flows.context import FlowContext
from app.flows.digest import shipped_to_theme
from app.flows.jobs import GateCheckArgs
from app.flows.registry import Flow
from app.flows.verify import queue_revise
from app.github import git
from app.github.repo import RepoClient
from app.metrics import PROPOSALS
from app.policy import gate
from app.policy import proposal as policy
from app.policy.commands import Permission, is_bot
from app.policy.labels import LabelSpec
from app.policy.markdown import neutral
from app.policy.repo_policy import RepoPolicy

SHIPPED = LabelSpec("autopack:shipped", "0e8a16", "An Autopack improvement for this feedback was merged")
REJECTED = LabelSpec("autopack:rejected", "e99695", "An Autopack proposal for this feedback was rejected")
MERGE_ATTEMPTS = 2


def accepts(event: ReviewEvent | PullRequestEvent) -> bool:
    """Autopack's PRs only; reviews by bots (Autopack's own audit reviews) change nothing."""
    review_by_bot = isinstance(event, ReviewEvent) and by_bot(event.review.user)
    return policy.issue_of_branch(event.pull_request.head.ref) is not None and not review_by_bot


async def on_review(ctx: FlowContext) -> None:
    event = ctx.event_as(ReviewEvent)
    review, pr = event.review, event.pull_request
    repo = await ctx.repo()
    proposal = await state.store(ctx).by_pr(repo.full_name, pr.number)
    if proposal is None or proposal.status not in policy.OPEN:
        return
    reviewer = review.user.login if review.user is not None else ""
    if ctx.action == "submitted" and review.state.lower() == "changes_requested":
        if by_bot(review.user):
            return
        if await repo.permission(reviewer, fresh=True) < Permission.WRITE:
            ctx.log.info("changes requested by a non-writer: no revise", reviewer=reviewer)
        else:
            await queue_revise(
                ctx,
                proposal,
                "review",
                key=f"review-{review.id}",
                review_id=review.id,
                review_body=(review.body or "")[:4_000],
            )
            return  # the revision moves the head; the gate is checked when it is ready again
    await state.queue_gate_check(ctx, proposal, f"delivery-{ctx.delivery_id}")


async def check(ctx: FlowContext) -> None:
    repo = await ctx.repo()
    proposal = await state.store(ctx).get(repo.full_name, ctx.args_as(GateCheckArgs).issue)
    if proposal is None or proposal.status not in policy.GATED or not proposal.pr_number:
        return
    rules = (await ctx.policy()).policy
    for attempt in range(MERGE_ATTEMPTS):
        pr = await repo.pull(proposal.pr_number)
        decision, head = await _decide(ctx, repo, proposal, rules, pr)
        await state.show_gate(ctx, repo, proposal, decision.status_line(head))
        if decision.action != "merge":
            return
        try:
            proposal.merge_sha = await git.merge(
                repo,
                proposal.pr_number,
                sha=head,
                method=rules.merge.method,
                title=f"{proposal.title} (#{proposal.pr_number})",
            )
        except RequestFailed as exc:
            if exc.response.status_code not in (405, 409):
                raise
            # The head moved or GitHub will not merge it as it is: decide again from fresh data.
            ctx.log.info(
                "merge refused; re-evaluating", pr=proposal.pr_number, status=exc.response.status_code
            )
            PROPOSALS.labels("merge_refused").inc()
            if attempt == MERGE_ATTEMPTS - 1:
                message = str((exc.response.json() or {}).get("message") or "")[:200]
                await state.show_gate(
                    ctx, repo, proposal, f"waiting for: GitHub to accept the merge ({neutral(message)})"
                )
            continue
        await shipped(ctx, repo, proposal, rules)
        return


async def _decide(
    ctx: FlowContext, repo: RepoClient, proposal: policy.Proposal, rules: RepoPolicy, pr: PullRequest
) -> tuple[gate.GateDecision, str]:
    head = pr.head.sha
    reviews = tuple(await repo.reviews(proposal.pr_number or 0))
    bot = await repo.bot_login()
    permissions: dict[str, Permission] = {}
    for review in gate.latest_reviews(reviews).values():
        positioned = review.state.upper() in ("APPROVED", "CHANGES_REQUESTED")
        if positioned and not is_bot(review.reviewer, review.reviewer_type) and review.reviewer != bot:
            permissions[review.reviewer.lower()] = await repo.permission(
                review.reviewer, fresh=True
            )  # asked now
    runs, statuses = await git.ci_for(repo, head)
    decision = gate.decide(
        gate.GateInput(
            head_sha=head,
            reviews=reviews,
            permissions=permissions,
            checks=tuple(policy.checks_from(runs, statuses, own_app_id=ctx.settings.app_id)),
            required_checks=await git.required_checks(repo, pr.base.ref),
            audit=gate.audit_verdict(runs, ctx.settings.app_id),
            draft=pr.draft,
            open=pr.state == "open",
            mergeable_state=pr.mergeable_state,
            reporter=proposal.reporter,
            bot_login=bot,
            required_approvals=rules.merge.required_approvals,
            reporter_can_approve=rules.merge.reporter_can_approve,
            # Verification saw no CI at all in this repository: zero checks is the expected state.
            no_ci=any(v.outcome == "none" for v in proposal.verification),
        )
    )
    ctx.log.info("gate", pr=proposal.pr_number, head=head, action=decision.action, reasons=decision.reasons)
    return decision, head


async def shipped(ctx: FlowContext, repo: RepoClient, proposal: policy.Proposal, rules: RepoPolicy) -> None:
    proposal.move(policy.Status.MERGED)
    PROPOSALS.labels("merged").inc()
    await repo.add_labels(proposal.issue, [SHIPPED])
    if rules.merge.delete_branch:
        await git.delete_branch(repo, proposal.branch)
    await state.publish(ctx, repo, proposal, body=False)
    if proposal.pr_number:
        await shipped_to_theme(ctx, repo, proposal.issue, proposal.pr_number, proposal.title)


async def reject(
    ctx: FlowContext, repo: RepoClient, proposal: policy.Proposal, reason: str, by: str | None
) -> None:
    """Remember the rejection (once), label the issue, tell it."""
    proposal.move(policy.Status.CLOSED)
    proposal.error = f"Reason given: {reason}" if reason else None
    files = ", ".join(sorted(proposal.files)[:10])
    await state.store(ctx).record_rejection(
        repo.full_name,
        proposal.issue,
        proposal.pr_number,
        reason,
        by,
        area=proposal.area or None,
        summary=f"{proposal.title}: {files}",
    )
    PROPOSALS.labels("rejected").inc()
    await repo.add_labels(proposal.issue, [REJECTED])
    await state.publish(ctx, repo, proposal, body=False)


async def on_closed(ctx: FlowContext) -> None:
    event = ctx.event_as(PullRequestEvent)
    pr = event.pull_request
    repo = await ctx.repo()
    proposal = await state.store(ctx).by_pr(repo.full_name, pr.number)
    if proposal is None or proposal.status in policy.ENDED:
        return  # not ours, or recorded already (a merge by the gate, `/autopack reject`)
    if pr.merged:
        proposal.merge_sha = pr.merge_commit_sha
        await shipped(ctx, repo, proposal, (await ctx.policy()).policy)
        return
    sender = (event.sender.login or None) if event.sender is not None else None
    await reject(ctx, repo, proposal, await _last_maintainer_words(repo, proposal.pr_number or 0), sender)


async def _last_maintainer_words(repo: RepoClient, number: int, *, tries: int = 5) -> str:
    """The reason for a close: the last comment on the PR by a human writer (asked now)."""
    bot = await repo.bot_login()
    asked = 0
    for comment in reversed(await repo.issue_comments(number)):
        login = comment.author
        if by_bot(comment.user) or login == bot:
            continue
        asked += 1
        if await repo.permission(login, fresh=True) >= Permission.WRITE:
            return (comment.body or "").strip()[:2_000]
        if asked >= tries:
            break
    return ""


REVIEW_FLOW = Flow(
    name="gate",
    triggers=frozenset({("pull_request_review", "submitted"), ("pull_request_review", "dismissed")}),
    handler=on_review,
    accepts=accepts,
    section="proposals",
)
CHECK_FLOW = Flow(
    name=state.GATE_CHECK, triggers=frozenset(), handler=check, section="proposals", args=GateCheckArgs
)
CLOSED_FLOW = Flow(
    name="learn",
    triggers=frozenset({("pull_request", "closed")}),
    handler=on_closed,
    accepts=accepts,
    section="proposals",
)
