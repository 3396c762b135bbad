"""`installation` and `installation_repositories`: keep the table of installations and their repos.

Later flows read it for schedules (weekly digests) and budgets. Nothing here calls GitHub: the
payloads carry everything.
"""

from __future__ import annotations

from app.events import InstallationEvent, InstallationRepositoriesEvent, RepositoryRef
from app.flows.context import FlowContext
from app.flows.digest import schedule_all
from app.flows.registry import Flow


async def handle(ctx: FlowContext) -> None:
    event = ctx.event
    if not isinstance(event, InstallationEvent | InstallationRepositoriesEvent):
        raise ctx.unexpected()
    installation = event.installation
    login = installation.account.name if installation.account is not None else ""
    if isinstance(event, InstallationEvent) and ctx.action == "deleted":
        await ctx.installations.delete(installation.id)
        ctx.log.info("installation forgotten", installation=installation.id, account=login)
        return
    suspended = ctx.action == "suspend" or (
        ctx.action != "unsuspend" and installation.suspended_at is not None
    )
    await ctx.installations.upsert(
        installation.id,
        login,
        installation.account.type if installation.account is not None else None,
        installation.target_type,
        suspended=suspended,
        repositories=(
            _repos(event.repositories)
            if isinstance(event, InstallationEvent) and ctx.action == "created"
            else None
        ),
    )
    if isinstance(event, InstallationRepositoriesEvent):
        added = _repos(event.repositories_added)
        removed = [r for r, _ in _repos(event.repositories_removed)]
        await ctx.installations.change_repositories(installation.id, added, removed)
    if not suspended:
        await schedule_all(ctx.inbox)  # new repositories get their weekly digest
    ctx.log.info("installation recorded", installation=installation.id, account=login, action=ctx.action)


def _repos(items: tuple[RepositoryRef, ...]) -> list[tuple[int, str]]:
    return [(r.id, r.full_name) for r in items if r.id is not None]


FLOW = Flow(
    name="installation",
    triggers=frozenset({("installation", None), ("installation_repositories", None)}),
    handler=handle,
    needs_repository=False,
)
