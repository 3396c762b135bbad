"""`installation` and `installation_repositories`: keep the table of installations and their repos.

Later flows read it for schedules (weekly digests) and budgets. Nothing here calls GitHub: the
payloads carry everything.
"""

from __future__ import annotations

from typing import Any

from app.flows.context import FlowContext
from app.flows.digest import schedule_all
from app.flows.registry import Flow


def _repos(items: list[dict[str, Any]] | None) -> list[tuple[int, str]]:
    return [(int(r["id"]), str(r["full_name"])) for r in items or [] if "id" in r and "full_name" in r]


async def handle(ctx: FlowContext) -> None:
    installation = ctx.payload.get("installation") or {}
    inst_id = int(installation["id"])
    account = installation.get("account") or {}
    login = str(account.get("login") or account.get("slug") or "")
    if ctx.event_name == "installation" and ctx.action == "deleted":
        await ctx.installations.delete(inst_id)
        ctx.log.info("installation forgotten", installation=inst_id, account=login)
        return
    suspended = ctx.action == "suspend" or (
        ctx.action != "unsuspend" and installation.get("suspended_at") is not None
    )
    repositories = _repos(ctx.payload.get("repositories")) if ctx.action == "created" else None
    await ctx.installations.upsert(
        inst_id,
        login,
        account.get("type"),
        installation.get("target_type"),
        suspended=suspended,
        repositories=repositories,
    )
    if ctx.event_name == "installation_repositories":
        added = _repos(ctx.payload.get("repositories_added"))
        removed = [r for r, _ in _repos(ctx.payload.get("repositories_removed"))]
        await ctx.installations.change_repositories(inst_id, added, removed)
    if not suspended:
        await schedule_all(ctx.inbox)  # new repositories get their weekly digest
    ctx.log.info("installation recorded", installation=inst_id, account=login, action=ctx.action)


FLOW = Flow(
    name="installation",
    triggers=frozenset({("installation", None), ("installation_repositories", None)}),
    handler=handle,
    needs_repository=False,
)
