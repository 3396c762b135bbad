"""Which models answer a task: pure, table-tested (DESIGN §4).

task + role + complexity + category → an ordered chain of models. Category overrides beat the
complexity tier; a secondary auditor exists only where the routing names one; a provider past its
soft budget limit gets its cheaper model; a model past its shutdown date is skipped for the next in
its chain (and, if the chain runs dry, for the catalogue's replacement), so a provider retiring a
model never breaks a flow. The caller walks the chain: a 429, 5xx or timeout moves to the next.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

from app.llm.config import Catalogue, Complexity, ModelInfo, Provider, Routing

Task = Literal["triage", "build", "audit", "dependency_review", "push_audit", "digest"]
Role = Literal["analyst", "builder", "auditor", "secondary_auditor"]

# The roles each task uses, in the order they run.
TASK_ROLES: dict[str, tuple[Role, ...]] = {
    "triage": ("analyst",),
    "build": ("builder",),
    "audit": ("auditor", "secondary_auditor"),
    "dependency_review": ("analyst",),
    "push_audit": ("auditor", "secondary_auditor"),
    "digest": ("analyst",),
}


@dataclass(frozen=True)
class Candidate:
    model: str
    provider: Provider
    info: ModelInfo | None  # None: a model the catalogue does not know (explicit provider)
    why: str  # primary | fallback | replacement of X | cheaper than X (soft limit)


@dataclass(frozen=True)
class Skip:
    model: str
    reason: str


@dataclass(frozen=True)
class Route:
    task: str
    role: Role
    complexity: Complexity
    category: str
    chain: tuple[Candidate, ...]
    skipped: tuple[Skip, ...] = ()
    notes: tuple[str, ...] = field(default=())


def provider_of(model: str, routing: Routing, catalogue: Catalogue) -> Provider | None:
    """From an explicit `providers:` entry, the catalogue, or the model's name."""
    if model in routing.providers:
        return routing.providers[model]
    info = catalogue.get(model)
    if info is not None:
        return info.provider
    if model.startswith("claude-"):
        return "anthropic"
    if model.startswith(("gpt-", "o1", "o3", "o4", "chatgpt-")):
        return "openai"
    return None


def primary_model(routing: Routing, role: Role, complexity: Complexity, category: str) -> str | None:
    tier = routing.complexity_models[complexity]
    override = routing.category_models.get(category)
    if role == "builder":
        return (override.builder_model_override if override else None) or tier.builder
    if role == "auditor":
        return (override.auditor_model_override if override else None) or tier.auditor
    if role == "secondary_auditor":
        return override.secondary_auditor if override else None
    # analyst: its own override or tier entry; without one, the tier's auditor reads for us.
    return (override.analyst_model_override if override else None) or tier.analyst or tier.auditor


def cheaper_model(model: str, routing: Routing, catalogue: Catalogue) -> str | None:
    if model in routing.cheaper:
        return routing.cheaper[model]
    info = catalogue.get(model)
    return info.cheaper if info else None


def route(
    routing: Routing,
    catalogue: Catalogue,
    *,
    task: str,
    role: Role,
    complexity: Complexity,
    category: str = "general",
    today: dt.date,
    past_soft_limit: frozenset[str] = frozenset(),
) -> Route | None:
    """The chain for one role of a task, or None where the role does not apply (no secondary)."""
    primary = primary_model(routing, role, complexity, category)
    if primary is None:
        return None
    wanted = [(primary, "primary")] + [
        (m, f"fallback of {primary}") for m in routing.fallbacks.get(primary, [])
    ]
    chain: list[Candidate] = []
    skipped: list[Skip] = []
    notes: list[str] = []
    replacements: list[tuple[str, str]] = []
    seen: set[str] = set()

    for model, why in wanted:
        provider = provider_of(model, routing, catalogue)
        if provider in past_soft_limit:
            cheaper = cheaper_model(model, routing, catalogue)
            if cheaper and cheaper not in seen:
                notes.append(
                    f"{provider} is past its soft budget limit: {cheaper} answers instead of {model}"
                )
                model, why = cheaper, f"cheaper than {model} (soft limit)"
                provider = provider_of(model, routing, catalogue)
        if model in seen or provider is None:
            if provider is None:
                skipped.append(Skip(model, "provider unknown"))
            continue
        seen.add(model)
        info = catalogue.get(model)
        if info is not None and info.status(today) == "retired":
            skipped.append(Skip(model, f"shut down on {info.shutdown}" if info.shutdown else "retired"))
            if info.replacement:
                replacements.append((info.replacement, f"replacement of {model}"))
            continue
        chain.append(Candidate(model, provider, info, why))

    for model, why in replacements:
        provider = provider_of(model, routing, catalogue)
        info = catalogue.get(model)
        if model in seen or provider is None or (info is not None and info.status(today) == "retired"):
            continue
        seen.add(model)
        chain.append(Candidate(model, provider, info, why))

    return Route(task, role, complexity, category, tuple(chain), tuple(skipped), tuple(notes))
