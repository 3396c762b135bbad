"""Job → flow: load the delivery, parse it into its event's model (`app.events`), run the flow in
its mode.

A flow's policy section sets its mode: `act` runs it; `off` does not; `shadow` runs it to its
decision with a client whose writes are kept instead of sent, then records them
(`shadow_decisions`) once the job succeeded.

A payload that lacks what Autopack reads of it, a pruned payload or an unknown flow is a permanent
failure (retrying cannot fix them); GitHub errors are classified (rate limit → reschedule, 404/422 →
permanent, 5xx/timeouts → retry with backoff).
"""

from __future__ import annotations

import contextlib
from typing import Any

import structlog
from githubkit.exception import GitHubException, SecondaryRateLimitExceeded
from pydantic import ValidationError

from app import events
from app.errors import PermanentError, Reschedule
from app.flows.context import FlowContext
from app.flows.jobs import JobArgs
from app.flows.registry import Flow, Registry
from app.github.client import DryRunTransport, GitHubApp
from app.github.errors import classify
from app.github.policy_loader import PolicyLoader
from app.inbox.models import Job
from app.inbox.shadow import ShadowDecisions
from app.inbox.store import Inbox
from app.llm.service import LLM
from app.logs import get_logger
from app.metrics import JOBS_DEFERRED
from app.policy import rate_budget
from app.settings import Settings

log = get_logger("autopack.dispatch")


class Dispatcher:
    def __init__(
        self,
        registry: Registry,
        inbox: Inbox,
        github: GitHubApp | None,
        settings: Settings,
        llm: LLM | None = None,
    ) -> None:
        self.registry = registry
        self.llm = llm
        self.policies = PolicyLoader(github) if github is not None else None
        self.inbox = inbox
        self.github = github
        self.settings = settings

    async def __call__(self, job: Job) -> None:
        flow = self.registry.get(job.flow)
        if flow is None:
            raise PermanentError(f"no flow named {job.flow!r} in this release")
        event_name, action, event, args = "schedule", None, None, None
        if job.delivery_id is None:
            args = parse_args(flow, job.args)
            installation_id, repository = args.installation_id, args.repository
        else:
            delivery = await self.inbox.get_delivery(job.delivery_id)
            if delivery is None or delivery.payload is None:
                raise PermanentError(f"delivery {job.delivery_id} or its payload is gone")
            event_name, action = delivery.event, delivery.action
            installation_id, repository = delivery.installation_id, delivery.repository
            event = events.parse(event_name, delivery.payload)  # Unreadable: a permanent error
        structlog.contextvars.bind_contextvars(
            github_event=event_name, action=action, installation=installation_id, repository=repository
        )
        if flow.needs_repository and (installation_id is None or repository is None):
            raise PermanentError(f"{event_name} delivery has no installation or repository")
        ctx = FlowContext(
            job=job,
            event_name=event_name,
            action=action,
            event=event,
            delivery_id=job.delivery_id,
            installation_id=installation_id,
            repository=repository,
            inbox=self.inbox,
            github=self.github,
            settings=self.settings,
            log=log,
            llm=self.llm,
            policies=self.policies,
            args=args,
        )
        try:
            await self._within_budget(flow, action, installation_id)
            if flow.needs_repository and self.github is not None:
                await ctx.know_default_branch()
            if flow.section is not None and await self._mode(ctx, flow.section) == "off":
                ctx.log.info("flow off by policy", flow=flow.name, section=flow.section)
                return
            await flow.handler(ctx)
            if ctx.shadow is not None and ctx.shadow.writes and repository is not None:
                await ShadowDecisions(self.inbox.db, clock=self.inbox.clock).record(
                    repository, flow.name, job.subject, job.id, job.delivery_id, list(ctx.shadow.writes)
                )
                ctx.log.info("shadow decision recorded", flow=flow.name, writes=len(ctx.shadow.writes))
        except GitHubException as exc:
            mapped = classify(exc)
            if (
                isinstance(exc, SecondaryRateLimitExceeded)
                and isinstance(mapped, Reschedule)
                and installation_id
            ):
                await self.inbox.block_installation(installation_id, mapped.at)  # every process waits
            if mapped is exc:
                raise
            raise mapped from exc
        finally:
            await self._keep_rate_limit(installation_id)

    async def _within_budget(self, flow: Flow, action: str | None, installation_id: int | None) -> None:
        """Raise Reschedule when the installation's GitHub budget says this job must wait: background
        work under the reserve, every job after a secondary rate limit. Counted and logged."""
        if installation_id is None:
            return
        budget = await self.inbox.rate_budget(installation_id)
        seen = self.github.rate_limits.get(installation_id) if self.github is not None else None
        if seen is not None and seen.reset >= (budget.reset_at if budget else 0):  # this process's is newer
            budget = rate_budget.Budget(
                seen.remaining, seen.limit, seen.reset, budget.blocked_until if budget else 0.0
            )
        wait = rate_budget.deferral(budget, background=flow.is_background(action), now=self.inbox.clock())
        if wait is None:
            return
        JOBS_DEFERRED.labels(flow.name, wait.kind).inc()
        log.warning("job deferred", flow=flow.name, until=wait.until, kind=wait.kind, reason=wait.reason)
        raise Reschedule(wait.until, wait.reason)

    async def _mode(self, ctx: FlowContext, section: str) -> str:
        """The flow's `mode` in the repository's policy. In shadow the job's client keeps its
        writes (`ctx.shadow`) over the shared pool, and reads go to GitHub as in act."""
        if self.github is None or ctx.installation_id is None or ctx.repository is None:
            return "act"
        mode = str(getattr((await ctx.policy()).policy, section).mode)
        if mode == "shadow":
            ctx.shadow = DryRunTransport(inner=self.github.transport)
        return mode

    async def _keep_rate_limit(self, installation_id: int | None) -> None:
        """The installation's latest rate limit, for every process's status page (best effort)."""
        if self.github is None or installation_id is None:
            return
        seen = self.github.rate_limits.get(installation_id)
        if seen is not None:
            with contextlib.suppress(Exception):
                await self.inbox.save_rate_limit(
                    seen.installation_id, seen.remaining, seen.limit, seen.reset, seen.seen_at
                )


def parse_args(flow: Flow, args: dict[str, Any]) -> JobArgs:
    """A scheduled job's args as its flow's model, or a permanent error naming the first problem."""
    try:
        return flow.args.model_validate(args)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise PermanentError(
            f"{flow.name} job args do not fit {flow.args.__name__} (first at {where}: {first['msg']})"
        ) from None
