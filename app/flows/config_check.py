"""`push` to the default branch that touches `.github/autopack.yml` → an "Autopack config" check run.

A maintainer who pushes a broken policy file sees the exact error and line on that commit at once,
instead of finding out when the next feedback issue is triaged on the defaults. A valid file gets a
success check run naming where the policy came from.
"""

from __future__ import annotations

from app.events import PushEvent
from app.flows.context import FlowContext
from app.flows.registry import Flow
from app.github.policy_loader import CHECK_NAME
from app.policy.repo_policy import FILE_PATH

VALID_TITLE = f"{FILE_PATH} is valid"


def accepts(event: PushEvent) -> bool:
    """A push to the default branch that adds or changes the policy file."""
    if (
        event.repository is None
        or event.ref != f"refs/heads/{event.repository.default_branch}"
        or event.deleted
    ):
        return False
    commits = [*event.commits, *([event.head_commit] if event.head_commit else [])]
    return any(FILE_PATH in (*commit.added, *commit.modified) for commit in commits)


async def handle(ctx: FlowContext) -> None:
    loaded = await ctx.policy()  # reports an invalid file itself
    if loaded.error is not None or loaded.source == "defaults":
        return
    repo = await ctx.repo()
    if await repo.check_run_exists(loaded.head_sha, CHECK_NAME, VALID_TITLE):
        return
    await repo.create_check_run(
        loaded.head_sha,
        CHECK_NAME,
        conclusion="success",
        title=VALID_TITLE,
        summary=f"Autopack uses `{loaded.source}` for this repository.",
    )


FLOW = Flow(name="config_check", triggers=frozenset({("push", None)}), handler=handle, accepts=accepts)
