"""Which flow handles which webhook: (event, action) → flows.

This is the map a reader follows from the receiver to a behaviour. A flow may add `accepts`, a
cheap pure check on the delivery's event (`app.events`; no I/O), so the receiver can answer
`ignored` for deliveries the flow would do nothing with — for example comments that contain no
`/autopack` command. A payload that does not parse is queued for every flow its event triggers:
the dispatcher refuses it with the exact error, where an operator sees it, and nothing is lost.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from app import events
from app.flows.jobs import JobArgs

if TYPE_CHECKING:
    from app.flows.context import FlowContext

Handler = Callable[["FlowContext"], Awaitable[None]]


@dataclass(frozen=True)
class Flow:
    name: str
    triggers: frozenset[tuple[str, str | None]]  # action None: every action of the event
    handler: Handler
    accepts: Callable[[Any], bool] | None = None  # given the event's model (`app.events.EVENTS`)
    needs_repository: bool = True  # runs with an installation client narrowed to the repo
    # The policy section whose `mode` (act | shadow | off) governs this flow; None: always acts.
    section: str | None = None
    # Background work (True, or the actions that are) waits when its installation's GitHub budget
    # runs low, leaving the rest to interactive work (`app.policy.rate_budget`).
    background: bool | frozenset[str] = False
    # What a scheduled job of this flow carries (`app.flows.jobs`), parsed before the handler runs.
    args: type[JobArgs] = JobArgs

    def is_background(self, action: str | None) -> bool:
        return self.background is True or (
            isinstance(self.background, frozenset) and action in self.background
        )


@dataclass
class Registry:
    flows: dict[str, Flow] = field(default_factory=dict)

    def register(self, flow: Flow) -> Flow:
        if flow.name in self.flows:
            raise ValueError(f"flow {flow.name!r} registered twice")
        self.flows[flow.name] = flow
        return flow

    def get(self, name: str) -> Flow | None:
        return self.flows.get(name)

    def events(self) -> frozenset[str]:
        """Every event some flow handles."""
        return frozenset(event for flow in self.flows.values() for event, _ in flow.triggers)

    def flows_for(self, event: str, action: str | None, payload: dict[str, Any]) -> list[str]:
        triggered = [
            flow
            for flow in self.flows.values()
            if (event, action) in flow.triggers or (event, None) in flow.triggers
        ]
        if all(flow.accepts is None for flow in triggered):
            return [flow.name for flow in triggered]
        try:
            parsed = events.parse(event, payload)
        except events.Unreadable:
            return [flow.name for flow in triggered]  # refused by the dispatcher, visibly
        return [flow.name for flow in triggered if flow.accepts is None or flow.accepts(parsed)]


def default_registry() -> Registry:
    """Every flow Autopack has. Importing here keeps `app.flows.registry` free of cycles."""
    from app.flows import (
        audit,
        commands,
        config_check,
        dependencies,
        digest,
        gate,
        installations,
        learnings,
        propose,
        push_audit,
        revise,
        triage,
        verify,
    )

    registry = Registry()
    registry.register(installations.FLOW)
    registry.register(commands.FLOW)
    registry.register(config_check.FLOW)
    registry.register(triage.FLOW)
    registry.register(audit.FLOW)
    registry.register(learnings.FLOW)
    registry.register(propose.FLOW)
    registry.register(verify.FLOW)
    registry.register(verify.STEP_FLOW)
    registry.register(revise.FLOW)
    registry.register(gate.REVIEW_FLOW)
    registry.register(gate.CHECK_FLOW)
    registry.register(gate.CLOSED_FLOW)
    registry.register(dependencies.FLOW)
    registry.register(dependencies.CI_FLOW)
    registry.register(push_audit.FLOW)
    registry.register(digest.FLOW)
    return registry
