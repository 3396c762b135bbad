"""`issues.opened` / `issues.labeled` / `issues.edited` / `/autopack triage` → triage one feedback issue.

read the policy → screen (no model yet) → list open feedback and areas → ask the analyst for an
answer whose duplicates and area may only be what we listed → labels from the validated enums →
one triage comment, edited in place on re-triage → record the triage (same-body skips, rate limit).
"""

from __future__ import annotations

from app.errors import PermanentError
from app.events import Issue, IssuesEvent, by_bot
from app.flows.context import FlowContext
from app.flows.jobs import ProposeArgs, TriageArgs
from app.flows.registry import Flow
from app.llm.ledger import CallMeta
from app.llm.prompt import Section
from app.llm.service import LLM, Answer
from app.metrics import TRIAGE
from app.policy import triage

DAY = 86_400


async def handle(ctx: FlowContext) -> None:
    asked = ctx.args_as(TriageArgs) if ctx.args is not None else None  # `/autopack triage`
    if asked is not None:
        issue, label = asked.issue, None
    else:
        event = ctx.event_as(IssuesEvent)
        issue, label = event.issue, event.label.name if event.label is not None else None
    forced = asked is not None and asked.forced
    by_author = asked is not None and asked.by_author  # asked by the issue's author, without rights
    loaded = await ctx.policy()
    policy = loaded.policy
    repo = await ctx.repo()
    number, author = issue.number, issue.author
    last, today = await ctx.triage_log.history(repo.full_name, number, author, since=ctx.inbox.clock() - DAY)
    if by_author:  # every run counts against the author's daily limit, re-triages included
        today = len(await ctx.triage_log.times(repo.full_name, author, since=ctx.inbox.clock() - DAY))
    history = triage.History(last.body_hash if last else None, last.body if last else None, today)
    verdict = triage.screen(
        issue,
        action=ctx.action or "",
        label=label,
        policy=policy,
        history=history,
        forced=forced,
        limited=by_author or not forced,
    )
    if not verdict.run:
        TRIAGE.labels(verdict.reason).inc()
        ctx.log.info("triage skipped", issue=number, reason=verdict.reason)
        return
    if ctx.llm is None:
        raise PermanentError("no LLM is configured")

    others = [i for i in await repo.open_issues_with_label(policy.feedback.label) if i.number != number]
    areas = dict(policy.feedback.areas) or {
        d: [f"{d}/**"] for d in await repo.top_level_dirs(loaded.head_sha)
    }
    answer = await analyse(
        ctx.llm,
        CallMeta(
            ctx.installation_id, repo.full_name, "triage", "analyst", "general", ctx.job.id, ctx.delivery_id
        ),
        issue,
        others=others,
        areas=areas,
        max_body_chars=policy.feedback.max_body_chars,
    )
    analysis = answer.value
    await repo.add_labels(number, triage.labels_for(analysis))
    comment = triage.render_comment(
        analysis,
        policy=policy,
        model=answer.model,
        tokens=answer.input_tokens + answer.output_tokens,
        cost=answer.cost,
        notes=answer.notes,
    )
    comment_id = await repo.upsert_comment(
        number,
        "triage",
        comment,
        known_id=last.comment_id if last else None,
        search=last is not None or ctx.job.attempts > 1,  # a first attempt of a first triage: none yet
    )
    duplicates = list(getattr(analysis, "duplicates", []))
    if duplicates and policy.feedback.close_duplicates:
        await repo.close_as_duplicate(number)
    await ctx.triage_log.record(
        repo.full_name,
        number,
        author,
        triage.body_hash(issue.body),
        issue.body or "",
        comment_id,
        analysis.model_dump(),
    )
    TRIAGE.labels("triaged").inc()
    if (
        policy.proposals.auto
        and analysis.warranted
        and analysis.confidence >= policy.proposals.min_confidence
    ):
        # The propose flow checks the rest (rejections, an open proposal, the budget).
        await ctx.enqueue(
            "propose",
            ProposeArgs(issue=issue, auto=True),
            f"propose-auto:{repo.full_name}#{number}",
        )
    ctx.log.info(
        "triaged",
        issue=number,
        category=analysis.category,
        severity=analysis.severity,
        model=answer.model,
        duplicates=duplicates,
    )


async def analyse(
    llm: LLM,
    call: CallMeta,
    issue: Issue,
    *,
    others: list[Issue],
    areas: dict[str, list[str]],
    max_body_chars: int,
) -> Answer[triage.TriageBase]:
    """The analyst's answer for one issue, whose duplicates and area may only name what is listed
    (`others`: open feedback, number and title). Shared with `autopack eval triage`, so the
    evaluation measures exactly what triage does."""
    assert call.repository is not None
    schema = triage.analysis_schema(sorted(areas), [i.number for i in others])
    return await llm.ask(
        schema,
        template="triage",
        sections=[
            Section("issue_title", issue.title),
            Section("issue_body", (issue.body or "")[:max_body_chars]),
            Section(
                "areas", "\n".join(f"{name}: {', '.join(globs)}" for name, globs in sorted(areas.items()))
            ),
            Section("open_feedback", "\n".join(f"#{i.number}: {i.title}" for i in others) or "(none)"),
        ],
        call=call,
        role="analyst",
        complexity="low",
        values={"repository": call.repository},
        max_output=1_200,
    )


def accepts(event: IssuesEvent) -> bool:
    """Receiver-side filter (the label's name is the repository's policy, read in the flow): an
    open issue by a human that carries at least one label can be feedback; others cannot."""
    issue = event.issue
    return bool(issue.labels) and issue.state == "open" and not by_bot(issue.user)


FLOW = Flow(
    name="triage",
    triggers=frozenset({("issues", "opened"), ("issues", "labeled"), ("issues", "edited")}),
    handler=handle,
    accepts=accepts,
    section="feedback",
    background=frozenset({"edited"}),
    args=TriageArgs,
)
