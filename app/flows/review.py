"""`pull_request_review.submitted` with changes requested on an Autopack PR → a revise round.

Only a writer's review counts (asked from GitHub now); the builder then gets the review's body and
its line comments with their paths and lines.
"""

from __future__ import annotations

from typing import Any

from app.flows import proposal_state as state
from app.flows.context import FlowContext
from app.flows.registry import Flow
from app.flows.verify import queue_revise
from app.policy import proposal as policy
from app.policy.commands import Permission, is_bot


def accepts(payload: dict[str, Any]) -> bool:
    review = payload.get("review") or {}
    user = review.get("user") or {}
    head = ((payload.get("pull_request") or {}).get("head")) or {}
    return (
        str(review.get("state") or "").lower() == "changes_requested"
        and policy.issue_of_branch(head.get("ref")) is not None
        and not is_bot(user.get("login"), user.get("type"))
    )


async def handle(ctx: FlowContext) -> None:
    review = ctx.payload["review"]
    pr = ctx.payload["pull_request"]
    repo = await ctx.repo()
    proposal = await state.store(ctx).by_pr(repo.full_name, int(pr["number"]))
    if proposal is None or proposal.status not in policy.OPEN:
        return
    reviewer = str((review.get("user") or {}).get("login") or "")
    if await repo.permission(reviewer) < Permission.WRITE:
        ctx.log.info("changes requested by a non-writer: not a revise trigger", reviewer=reviewer)
        return
    await queue_revise(
        ctx,
        proposal,
        "review",
        key=f"review-{review['id']}",
        review_id=int(review["id"]),
        review_body=str(review.get("body") or "")[:4_000],
    )


FLOW = Flow(
    name="review",
    triggers=frozenset({("pull_request_review", "submitted")}),
    handler=handle,
    accepts=accepts,
)
