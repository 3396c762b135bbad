"""`pull_request_review_thread.resolved` on one of the audit's findings, `pull_request.closed` on an
audited pull request → remember what writers dismissed there.

The audit reads its threads again before each re-audit, but a pull request may be merged or closed
right after a maintainer resolved a finding or reacted 👎 to it (GitHub sends no event for
reactions): these two events read the threads once more, so the dismissal is kept for the next pull
request. What counts as a dismissal is decided by `policy.dismissals.signals`; only a writer's is
stored, asked from GitHub now.
"""

from __future__ import annotations

from app.events import PullRequestEvent, ReviewThreadEvent
from app.flows.context import FlowContext
from app.flows.registry import Flow
from app.github.repo import RepoClient
from app.inbox.dismissals import Dismissals
from app.metrics import AUDITS
from app.policy import dismissals
from app.policy.commands import Permission


def accepts(event: ReviewThreadEvent | PullRequestEvent) -> bool:
    """A closed pull request, or a resolved thread that starts with one of the audit's findings."""
    if not isinstance(event, ReviewThreadEvent):
        return True
    first = event.thread.comments[0].body if event.thread.comments else None
    return dismissals.print_in(first or "") is not None


async def handle(ctx: FlowContext) -> None:
    event = ctx.event
    if not isinstance(event, ReviewThreadEvent | PullRequestEvent):
        raise ctx.unexpected()
    repo = await ctx.repo()
    number = event.pull_request.number
    if isinstance(event, PullRequestEvent) and not await ctx.inbox.db.run(
        lambda tx: tx.fetchone(
            "SELECT 1 AS audited FROM audit_reports WHERE repository = ? AND pr_number = ? LIMIT 1",
            (repo.full_name, number),
        )
    ):
        return  # never audited: no finding of Autopack's to dismiss
    threads = await repo.review_threads(number)
    await remember(ctx, repo, dismissals.signals(threads, await repo.bot_login()))


async def remember(ctx: FlowContext, repo: RepoClient, signals: list[dismissals.Signal]) -> None:
    """Store the dismissals of writers (anyone can react, and on some repositories resolve)."""
    store = Dismissals(ctx.inbox.db, clock=ctx.inbox.clock)
    known = {d.fingerprint for d in await store.all(repo.full_name)} if signals else set()
    writers: dict[str, bool] = {}
    for signal in signals:
        if signal.fp in known:
            continue  # dismissed already: nobody's permission needs asking again
        if signal.by not in writers:
            writers[signal.by] = await repo.permission(signal.by) >= Permission.WRITE
        if writers[signal.by] and await store.add(repo.full_name, signal):
            known.add(signal.fp)
            AUDITS.labels(f"dismissed_{signal.source}").inc()
            ctx.log.info("finding dismissed", fp=signal.fp, by=signal.by, source=signal.source)


FLOW = Flow(
    name="learn_dismissals",
    triggers=frozenset({("pull_request_review_thread", "resolved"), ("pull_request", "closed")}),
    handler=handle,
    accepts=accepts,
    section="audit",
    background=True,
)
