"""The one way a flow asks a model something (DESIGN §4).

    answer = await llm.ask(TriageResult, template="triage", sections=[...], call=CallMeta(...),
                           role="analyst", complexity="low")

Route → for each model in the chain: reserve budget, build the prompt for that model's tokenizer,
call, validate against the schema (one repair round that shows the model the validation errors),
settle the ledger. A provider failure moves to the next model; the ledger records which model
really answered. Nothing unvalidated leaves this module: the result is a pydantic object of the
requested type, or a typed failure.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from app import metrics
from app.errors import PermanentError
from app.llm import dialects
from app.llm import prompt as prompts
from app.llm.config import Catalogue, Complexity, ModelInfo, Routing
from app.llm.dialects import DIALECTS, Dialect, dialect_for
from app.llm.ledger import BudgetExceeded, CallMeta, Caps, Ledger
from app.llm.providers import Message, Provider, ProviderError, RawAnswer, StructuredRequest, Usage
from app.llm.router import Candidate, Role, Route, route
from app.llm.tokens import counter_for
from app.llm.tolerance import Adjustment, tolerate
from app.logs import get_logger

log = get_logger("autopack.llm")
T = TypeVar("T", bound=BaseModel)

# Input token budget per task (prompt included), before the model's own context limit.
TASK_INPUT_BUDGET = {
    "triage": 3_000,
    "audit": 12_000,
    "push_audit": 12_000,
    "dependency_review": 8_000,
    "digest": 16_000,
    "build": 60_000,
}
DEFAULT_CONTEXT = 128_000  # for models the catalogue does not know
MAX_CALLS_PER_JOB = 24  # across all attempts of one job (a repair round and fallbacks count)


class LLMError(Exception):
    """Base of the typed failures flows report."""


class StructuredOutputError(LLMError, PermanentError):
    """The model's answer did not fit the schema, even after a repair round. Permanent: retrying
    the job would spend the same tokens on the same failure; the flow reports it instead."""


class CallCapExceeded(LLMError, PermanentError):
    """A job asked for more model calls than one job may make (DESIGN §5.8): a loop, or a flow
    manipulated into spending the budget. Permanent: retrying would do the same."""


class NoModelAvailable(LLMError):
    """Every model of the chain failed or was retired. Transient: the job retries with backoff."""


@dataclass(frozen=True)
class Answer(Generic[T]):
    value: T
    model: str  # the model that answered
    requested_model: str  # the first choice of the route
    provider: str
    input_tokens: int
    cached_tokens: int
    output_tokens: int
    cost: float
    notes: tuple[str, ...]  # what a flow should tell its reader (fallbacks, soft limit)
    prompt: prompts.Prompt


def provider_schema(schema: type[BaseModel], dialect: Dialect | None = None) -> dict[str, Any]:
    """The schema a provider is given: strict shape, the constraints its dialect enforces as
    keywords and the others in words (`app.llm.dialects`)."""
    return dialects.render(schema, dialect or DIALECTS["openai-strict"])


@functools.lru_cache(maxsize=256)
def _full_schema(schema: type[BaseModel]) -> dict[str, Any]:
    return schema.model_json_schema()


def accept(schema: type[T], text: str) -> tuple[T, list[Adjustment]]:
    """The validated answer, after fixing the slips that are safe to fix (`app.llm.tolerance`).
    Raises ValidationError for anything that changes meaning: a repair round follows."""
    try:
        data = json.loads(text)
    except ValueError:
        return schema.model_validate_json(text), []  # raises, with pydantic's JSON error
    data, adjustments = tolerate(data, _full_schema(schema))
    return schema.model_validate(data), adjustments


def broken_rules(exc: ValidationError) -> list[str]:
    """ "field: rule" for each error, for logs: the fields and the rules, never the values."""
    return [
        f"{'.'.join(str(p) for p in error['loc']) or '(top level)'}: {error['type']}"
        for error in exc.errors()[:12]
    ]


def _errors(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors()[:12]:
        where = ".".join(str(p) for p in error["loc"]) or "(top level)"
        lines.append(f"- {where}: {error['msg']}")
    return "\n".join(lines)


@dataclass(frozen=True)
class Question(Generic[T]):
    """What a flow asks, whichever model answers: the schema, the prompt's template and sections,
    who pays (the call's metadata) and the most output it allows."""

    schema: type[T]
    template: str
    sections: tuple[prompts.Section, ...]
    call: CallMeta
    values: dict[str, str]
    max_output: int


@dataclass
class TokenUse:
    """What one model's rounds spent so far (a repair round adds to the first)."""

    input: int = 0  # all input, cached included
    cached: int = 0
    output: int = 0

    def add(self, usage: Usage) -> None:
        self.input += usage.input_tokens
        self.cached += usage.cached_tokens
        self.output += usage.output_tokens

    def cost(self, info: ModelInfo | None) -> float:
        return info.cost(self.input, self.cached, self.output) if info else 0.0


@dataclass(frozen=True)
class _Request:
    """A question as one model is asked it: the prompt fitted to its window, the schema in its
    dialect, and the worst case (an answer and a repair round) the ledger reserves."""

    built: prompts.Prompt
    first: list[Message]
    schema_name: str
    json_schema: dict[str, Any]
    max_output: int
    structured_output: str

    @property
    def worst_case(self) -> int:
        return 2 * (self.built.input_tokens + self.max_output)


def _request_for(question: Question[T], provider: Provider, candidate: Candidate) -> _Request:
    info = candidate.info
    structured_output = info.structured_output if info else "json_schema"
    dialect = dialect_for(
        candidate.provider, structured_output, getattr(provider, "compatible_server", False)
    )
    context = info.context if info else DEFAULT_CONTEXT
    output = min(question.max_output, info.max_output if info else question.max_output)
    built = prompts.build(
        question.template,
        list(question.sections),
        counter=counter_for(candidate.provider),
        budget_tokens=min(TASK_INPUT_BUDGET.get(question.call.task, 12_000), context - output),
        values=question.values,
    )
    return _Request(
        built=built,
        first=[Message("user", built.user)],
        schema_name=question.schema.__name__,
        json_schema=provider_schema(question.schema, dialect or DIALECTS["openai-compatible"]),
        max_output=output,
        structured_output=structured_output,
    )


async def _send(
    provider: Provider,
    candidate: Candidate,
    request: _Request,
    messages: list[Message],
    use: TokenUse,
    task: str,
) -> RawAnswer:
    """One round with one model; its tokens are added to `use` and to the metrics."""
    raw = await provider.complete(
        StructuredRequest(
            model=candidate.model,
            system=request.built.system,
            messages=messages,
            schema_name=request.schema_name,
            schema=request.json_schema,
            max_output=request.max_output,
            structured_output=request.structured_output,
        )
    )
    use.add(raw.usage)
    for kind, n in (
        ("input", raw.usage.input_tokens),
        ("cached", raw.usage.cached_tokens),
        ("output", raw.usage.output_tokens),
    ):
        metrics.LLM_TOKENS.labels(candidate.provider, candidate.model, task, kind).inc(n)
    if candidate.info is not None:
        metrics.LLM_COST.labels(candidate.provider, candidate.model, task).inc(
            candidate.info.cost(raw.usage.input_tokens, raw.usage.cached_tokens, raw.usage.output_tokens)
        )
    return raw


def _validated(schema: type[T], candidate: Candidate, raw: RawAnswer, *, round_: int) -> T:
    """The answer accepted (tolerated slips logged); a ValidationError is logged and raised."""
    try:
        value, adjustments = accept(schema, raw.text)
    except ValidationError as exc:
        metrics.LLM_INVALID.labels(candidate.model, str(round_ == 1).lower()).inc()
        log.warning(
            "answer does not fit its schema",
            model=candidate.model,
            schema=schema.__name__,
            round=round_,
            errors=exc.error_count(),
            broken=broken_rules(exc),
        )
        raise
    if adjustments:
        log.info(
            "answer tolerated",
            model=candidate.model,
            schema=schema.__name__,
            fixed=[f"{a.field}: {a.rule}" for a in adjustments],
        )
    return value


class LLM:
    def __init__(
        self,
        routing: Routing,
        catalogue: Catalogue,
        providers: Mapping[str, Provider],
        ledger: Ledger,
        *,
        clock: Callable[[], float] = time.time,
        max_calls_per_job: int = MAX_CALLS_PER_JOB,
    ) -> None:
        self.max_calls_per_job = max_calls_per_job
        self.routing = routing
        self.catalogue = catalogue
        self.providers = providers
        self.ledger = ledger
        self.clock = clock

    def has_role(self, task: str, role: Role, complexity: Complexity, category: str) -> bool:
        """Whether the routing names a model for this role (a secondary auditor is optional)."""
        today = dt.datetime.fromtimestamp(self.clock(), dt.UTC).date()
        chosen = route(
            self.routing,
            self.catalogue,
            task=task,
            role=role,
            complexity=complexity,
            category=category,
            today=today,
        )
        return chosen is not None

    def _caps(self, provider: str, call: CallMeta) -> Caps:
        quota = self.routing.provider_quotas.get(provider)  # type: ignore[call-overload]
        budgets = self.routing.budgets
        installation = (
            budgets.installations.get(call.installation_id, budgets.installation_weekly_tokens)
            if call.installation_id is not None
            else None
        )
        repository = (
            budgets.repositories.get(call.repository, budgets.repository_weekly_tokens)
            if call.repository is not None
            else None
        )
        return Caps(quota.weekly_token_cap if quota else None, installation, repository)

    async def _past_soft_limit(self) -> frozenset[str]:
        usage = await self.ledger.provider_usage()
        past = set()
        for provider, quota in self.routing.provider_quotas.items():
            if usage.get(provider, 0) >= quota.weekly_token_cap * quota.soft_limit_ratio:
                past.add(provider)
        return frozenset(past)

    async def _route(self, call: CallMeta, role: Role, complexity: Complexity) -> Route:
        """The chain for this call today, with providers past their soft limit stepped down."""
        today = dt.datetime.fromtimestamp(self.clock(), dt.UTC).date()
        chosen = route(
            self.routing,
            self.catalogue,
            task=call.task,
            role=role,
            complexity=complexity,
            category=call.category,
            today=today,
            past_soft_limit=await self._past_soft_limit(),
        )
        if chosen is None:
            raise NoModelAvailable(f"no {role} is configured for {call.task}/{call.category}")
        return chosen

    async def estimate(
        self, call: CallMeta, role: Role, complexity: Complexity, input_tokens: int, output_tokens: int
    ) -> tuple[str, float]:
        """The model a call would go to now, and what `input_tokens` and `output_tokens` would
        cost there (catalogue prices; 0 for a model the catalogue does not price)."""
        chosen = await self._route(call, role, complexity)
        for candidate in chosen.chain:
            if candidate.provider in self.providers:
                cost = candidate.info.cost(input_tokens, 0, output_tokens) if candidate.info else 0.0
                return candidate.model, cost
        raise NoModelAvailable(f"no provider is configured for {call.task}/{role}")

    async def preflight(self, call: CallMeta, role: Role, complexity: Complexity, tokens: int) -> None:
        """Before a task that will spend about `tokens`: raise BudgetExceeded (a Reschedule to the
        next budget week) unless some model of the route's chain has that much budget left."""
        chosen = await self._route(call, role, complexity)
        refusal: BudgetExceeded | None = None
        for candidate in chosen.chain:
            if candidate.provider not in self.providers:
                continue
            try:
                caps = self._caps(candidate.provider, call)
                await self.ledger.check(call, candidate.provider, tokens, caps)
                return
            except BudgetExceeded as exc:
                refusal = exc
                if exc.scope in ("installation", "repository"):
                    break
        if refusal is not None:
            raise refusal
        raise NoModelAvailable(f"no provider is configured for {call.task}/{role}")

    async def ask(
        self,
        schema: type[T],
        *,
        template: str,
        sections: list[prompts.Section],
        call: CallMeta,
        role: Role,
        complexity: Complexity,
        values: Mapping[str, str] | None = None,
        max_output: int = 4_096,
    ) -> Answer[T]:
        """The validated answer of the first model of the route's chain that gives one (fallbacks
        are noted on the answer). A budget or an outage moves to the next model; an answer that
        misses its schema twice is a StructuredOutputError."""
        if call.job_id is not None and await self.ledger.calls_for_job(call.job_id) >= self.max_calls_per_job:
            raise CallCapExceeded(f"job {call.job_id} reached {self.max_calls_per_job} LLM calls")
        question = Question(schema, template, tuple(sections), call, dict(values or {}), max_output)
        chosen = await self._route(call, role, complexity)
        for skip in chosen.skipped:
            metrics.LLM_SKIPPED.labels(skip.model, skip.reason.split(" on ")[0]).inc()
            log.warning("model skipped", model=skip.model, reason=skip.reason, task=call.task, role=role)
        notes = (*chosen.notes, *(f"{s.model} skipped: {s.reason}" for s in chosen.skipped))
        failures: list[str] = []  # calls that were made and failed
        missing: list[str] = []  # providers without credentials
        refusal: BudgetExceeded | None = None
        for candidate in chosen.chain:
            provider = self.providers.get(candidate.provider)
            if provider is None:
                missing.append(f"{candidate.model}: provider {candidate.provider} not configured")
                continue
            try:
                answer = await self._attempt(question, provider, candidate)
            except BudgetExceeded as exc:
                metrics.BUDGET_REFUSALS.labels(exc.scope).inc()
                log.warning("budget refused the call", model=candidate.model, reason=exc.reason)
                if exc.scope in ("installation", "repository"):
                    raise  # no other model can help: the cap is not the provider's
                refusal = exc
                continue
            except ProviderError as exc:
                metrics.LLM_ERRORS.labels(candidate.provider, exc.kind).inc()
                log.warning("provider failed; next model", model=candidate.model, error=str(exc))
                failures.append(f"{candidate.model}: {exc}")
                continue
            if candidate.why != "primary":
                metrics.LLM_FALLBACKS.labels(call.task, candidate.why.split(" ")[0]).inc()
                notes = (*notes, f"{candidate.model} answered ({candidate.why})")
            return replace(answer, requested_model=chosen.chain[0].model, notes=notes)
        if refusal is not None and not failures:
            raise refusal  # a budget, not an outage, stopped the call: defer to next week
        reasons = failures + missing
        raise NoModelAvailable(
            f"no model answered {call.task}/{role}: " + ("; ".join(reasons) or "the chain is empty")
        )

    async def _attempt(self, question: Question[T], provider: Provider, candidate: Candidate) -> Answer[T]:
        """One model: the prompt built for it, its worst case reserved, the answer and at most one
        repair round; what it spent is settled in the ledger whatever happens."""
        request = _request_for(question, provider, candidate)
        reservation = await self.ledger.reserve(
            question.call,
            candidate.provider,
            candidate.model,
            request.worst_case,
            self._caps(candidate.provider, question.call),
        )
        use = TokenUse()
        answered_by = candidate.model
        outcome = "provider_error"
        try:
            raw = await _send(provider, candidate, request, request.first, use, question.call.task)
            answered_by = raw.model
            try:
                value = _validated(question.schema, candidate, raw, round_=0)
            except ValidationError as exc:
                repair = prompts.template("repair").format(errors=_errors(exc))
                conversation = [
                    *request.first,
                    Message("assistant", raw.text[:20_000]),
                    Message("user", repair),
                ]
                raw = await _send(provider, candidate, request, conversation, use, question.call.task)
                answered_by = raw.model
                try:
                    value = _validated(question.schema, candidate, raw, round_=1)
                except ValidationError as again:
                    outcome = "invalid"
                    raise StructuredOutputError(
                        f"{candidate.model} gave an answer that does not fit {question.schema.__name__} "
                        f"twice:\n{_errors(again)}"
                    ) from None
            outcome = "ok"
            return Answer(
                value=value,
                model=answered_by,
                requested_model=candidate.model,
                provider=candidate.provider,
                input_tokens=use.input,
                cached_tokens=use.cached,
                output_tokens=use.output,
                cost=use.cost(candidate.info),
                notes=(),
                prompt=request.built,
            )
        finally:
            await self.ledger.settle(
                reservation,
                outcome=outcome,
                model=answered_by,
                input_tokens=use.input,
                cached_tokens=use.cached,
                output_tokens=use.output,
                cost=use.cost(candidate.info),
            )
