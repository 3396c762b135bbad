"""The weekly feedback digest, per repository: themes ranked by impact × feasibility, what shipped,
what was rejected, the week's cost; optionally the top themes' proposals.

Scheduling needs no cron: `schedule_all` (run at start and by the workers' housekeeping) queues each
installed repository's next digest as an inbox job with a `run_at` and a dedupe key per repository
and ISO week, so several workers or a restart still run one digest per week; each run queues the
next. The policy's `digest.schedule` is read when the job runs: a job due later is rescheduled.
`/autopack digest` runs one now.

open feedback issues with a triage answer → compact records → the analyst clusters each
token-sized batch, naming only listed numbers → code merges, scores impact from data and ranks →
one digest issue per ISO week (found by its marker, edited on re-runs; last week's is closed) →
themes stored, so a merged proposal can tell the rest of its theme that it shipped.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from app.errors import Reschedule
from app.events import Issue, User
from app.flows import jobs
from app.flows import proposal_state as state
from app.flows.context import FlowContext
from app.flows.jobs import DigestArgs, ProposeArgs
from app.flows.registry import Flow
from app.github import git
from app.github.repo import RepoClient
from app.inbox.installations import Installations
from app.inbox.shadow import ShadowDecisions
from app.inbox.store import Inbox
from app.llm.ledger import BudgetExceeded, CallMeta, Ledger
from app.llm.prompt import Section
from app.llm.service import NoModelAvailable
from app.metrics import DIGESTS
from app.policy import digest as policy
from app.policy import shadow
from app.policy.labels import LabelSpec
from app.policy.markdown import neutral
from app.policy.proposal import OPEN
from app.policy.repo_policy import DEFAULTS, RepoPolicy

DIGEST = "digest"
LABEL = LabelSpec("autopack:digest", "0052cc", "Autopack's weekly digest of user feedback")
WEEK = 7 * 86_400


def _marker(week: str) -> str:
    return f"<!-- autopack:digest:{week} -->"


async def schedule(inbox: Inbox, installation_id: int, repository: str, now: float) -> None:
    """Queue the repository's next scheduled digest (once per ISO week, whoever asks)."""
    due = policy.due_at(DEFAULTS.digest.schedule, now)
    if due <= now:
        due = policy.due_at(DEFAULTS.digest.schedule, now + WEEK)
    week = policy.iso_week(due)
    args = DigestArgs(installation_id=installation_id, repository=repository, week=week)
    await jobs.queue(inbox, DIGEST, args, f"digest:{repository}:{week}", run_at=due)


async def schedule_all(inbox: Inbox) -> int:
    """Every installed repository's next digest; returns how many repositories were looked at."""
    now = inbox.clock()
    count = 0
    for installation in await Installations(inbox.db).all():
        if installation.get("suspended_at"):
            continue
        for repository in installation.get("repositories") or []:
            await schedule(inbox, int(installation["id"]), str(repository), now)
            count += 1
    return count


async def handle(ctx: FlowContext) -> None:
    forced = ctx.args_as(DigestArgs).forced
    repo = await ctx.repo()
    now = ctx.inbox.clock()
    rules = (await ctx.policy()).policy
    if not forced:
        due = policy.due_at(rules.digest.schedule, now)
        if now < due - 60:  # the repository's schedule is later in the week than the default
            raise Reschedule(due, f"the digest is due at {rules.digest.schedule} UTC")
        await schedule(ctx.inbox, int(ctx.installation_id or 0), repo.full_name, now + 3_600)
        if not rules.digest.enabled:
            DIGESTS.labels("disabled").inc()
            return
    week = policy.iso_week(now)
    records = await _records(ctx, repo, rules)
    clusters, model = await _cluster(ctx, repo, records)
    proposed = await _propose(ctx, repo, rules, clusters, records, week) if rules.digest.auto_propose else []
    await state.store(ctx).save_clusters(repo.full_name, week, [(c.theme, list(c.issues)) for c in clusters])
    since = now - WEEK
    proposals = state.store(ctx)
    shipped = [
        policy.Shipped(p.pr_number or 0, p.issue, p.title)
        for p in await proposals.ended_since(repo.full_name, "merged", since)
    ]
    rejected = [
        policy.Rejected(r["pr_number"], int(r["issue_number"]), str(r["reason"] or ""))
        for r in await proposals.rejections_since(repo.full_name, since)
    ]
    usage = await Ledger(ctx.inbox.db).summary(
        since=policy.week_start(now).timestamp(), by="repo", repository=repo.full_name
    )
    body = policy.render(
        week=week,
        clusters=clusters,
        shipped=shipped,
        rejected=rejected,
        cost=sum(float(u["cost"]) for u in usage),
        tokens=sum(int(u["input_tokens"]) + int(u["output_tokens"]) for u in usage),
        proposed=proposed,
        model=model,
        trend=await _trend(ctx, repo.full_name, now),
        shadow=await _shadowed(ctx, repo.full_name, since),
    )
    number = await _publish(repo, week, body)
    DIGESTS.labels("posted").inc()
    ctx.log.info("digest posted", issue=number, week=week, clusters=len(clusters), proposed=proposed)


async def _shadowed(ctx: FlowContext, repository: str, since: float) -> dict[str, dict[str, int]]:
    """This week's shadow-mode decisions: flow → kind of write → count (labels, reviews, merges…)."""
    decisions = await ShadowDecisions(ctx.inbox.db).since(since, repository, limit=10_000)
    counts = shadow.tally([(d.flow, d.writes) for d in decisions])
    return {flow: dict(kinds.most_common()) for flow, kinds in counts.items()}


TREND_WEEKS = 8


async def _trend(ctx: FlowContext, repository: str, now: float) -> list[policy.WeekPoint]:
    """Feedback triaged and LLM cost per week, the last eight budget weeks (oldest first)."""
    first = policy.week_start(now) - dt.timedelta(weeks=TREND_WEEKS - 1)
    mondays = [(first + dt.timedelta(weeks=i)).date().isoformat() for i in range(TREND_WEEKS)]
    since = first.timestamp()

    def op(tx: Any) -> list[policy.WeekPoint]:
        triaged = tx.fetchall(
            "SELECT triaged_at FROM triage_log WHERE repository = ? AND triaged_at >= ?", (repository, since)
        )
        costs = {
            str(r["week"]): float(r["cost"])
            for r in tx.fetchall(
                "SELECT week, COALESCE(SUM(cost), 0) AS cost FROM llm_usage "
                "WHERE repository = ? AND week >= ? GROUP BY week",
                (repository, mondays[0]),
            )
        }
        counts = [0] * TREND_WEEKS
        for row in triaged:
            index = (policy.week_start(float(row["triaged_at"])) - first).days // 7
            if 0 <= index < TREND_WEEKS:
                counts[index] += 1
        return [
            policy.WeekPoint(monday, counts[i], costs.get(monday, 0.0)) for i, monday in enumerate(mondays)
        ]

    return list(await ctx.inbox.db.run(op))


async def _records(ctx: FlowContext, repo: RepoClient, rules: RepoPolicy) -> dict[int, policy.Record]:
    """Open feedback with a triage answer, as compact records (untriaged issues wait for triage)."""
    records: dict[int, policy.Record] = {}
    for issue in await git.feedback_issues(repo, rules.feedback.label):
        number = issue.number
        analysis = await ctx.triage_log.latest_analysis(repo.full_name, number)
        if analysis is None:
            continue
        records[number] = policy.Record(
            number=number,
            title=issue.title,
            summary=str(analysis.get("summary") or ""),
            category=str(analysis.get("category") or "other"),
            severity=str(analysis.get("severity") or "low"),
            area=str(analysis.get("area") or "unknown"),
            reactions=issue.reactions.total_count if issue.reactions is not None else 0,
            reporter=issue.author,
        )
    return records


async def _cluster(
    ctx: FlowContext, repo: RepoClient, records: dict[int, policy.Record]
) -> tuple[list[policy.Cluster], str | None]:
    if not records or ctx.llm is None:
        return [], None
    answers: list[dict[str, Any]] = []
    model = None
    for batch in policy.batches(list(records.values())):
        schema = policy.clusters_schema([r.number for r in batch])
        answer = await ctx.llm.ask(
            schema,
            template="digest",
            sections=[Section("feedback", "\n".join(r.line() for r in batch))],
            call=CallMeta(
                ctx.installation_id,
                repo.full_name,
                "digest",
                "analyst",
                "general",
                ctx.job.id,
                ctx.delivery_id,
            ),
            role="analyst",
            complexity="medium",
            values={"repository": repo.full_name},
            max_output=4_000,
        )
        model = answer.model
        answers += [c.model_dump() for c in answer.value.clusters]  # type: ignore[attr-defined]
    return policy.rank(answers, records), model


async def _propose(
    ctx: FlowContext,
    repo: RepoClient,
    rules: RepoPolicy,
    clusters: list[policy.Cluster],
    records: dict[int, policy.Record],
    week: str,
) -> list[int]:
    """Queue proposals for the top themes: a representative issue without an open or rejected
    proposal, while the budget allows."""
    from app.flows.building import PREFLIGHT_TOKENS, call_meta
    from app.policy.proposal import Proposal

    proposals = state.store(ctx)
    queued: list[int] = []
    for cluster in clusters:
        if len(queued) >= rules.digest.auto_propose:
            break
        issue = policy.representative(cluster, records)
        existing = await proposals.get(repo.full_name, issue)
        if (existing is not None and existing.status in OPEN) or await proposals.rejection(
            repo.full_name, issue
        ) is not None:
            continue
        if ctx.llm is not None:
            probe = Proposal(
                repository=repo.full_name, issue=issue, installation_id=int(ctx.installation_id or 0)
            )
            try:
                await ctx.llm.preflight(call_meta(ctx, probe), "builder", "medium", PREFLIGHT_TOKENS)
            except BudgetExceeded as exc:
                ctx.log.info("digest proposals stop at the budget", reason=exc.reason)
                break
            except NoModelAvailable as exc:
                ctx.log.warning("digest proposals need a builder model", error=str(exc))
                break
        record = records[issue]
        await ctx.enqueue(
            "propose",
            ProposeArgs(
                issue=Issue(number=issue, title=record.title, user=User(login=record.reporter)),
                notes=f"From the {week} feedback digest, theme: {cluster.theme}",
            ),
            f"propose-digest:{repo.full_name}#{issue}:{week}",
        )
        queued.append(issue)
    return queued


async def _publish(repo: RepoClient, week: str, body: str) -> int:
    """One issue per ISO week: edited when found by its marker; earlier digests are closed."""
    await repo.ensure_labels([LABEL])
    marker = _marker(week)
    existing = await git.issues_with_label(repo, LABEL.name)
    bot = await repo.bot_login()
    ours = [i for i in existing if i.author == bot]
    current = next((i for i in ours if marker in (i.body or "")), None)
    text = f"{body}\n\n{marker}"
    if current is None:
        number = await git.create_issue(repo, title=f"Feedback digest {week}", body=text, labels=[LABEL.name])
    else:
        number = current.number
        if current.body != text:
            await git.update_issue(repo, number, body=text)
    for issue in ours:
        if issue.number != number and issue.state == "open":
            await git.update_issue(repo, issue.number, state="closed")
    return number


async def shipped_to_theme(ctx: FlowContext, repo: RepoClient, issue: int, pr: int, title: str) -> None:
    """An Autopack PR merged: every other feedback issue of its digest theme is told (once each)."""
    found = await state.store(ctx).cluster_of(repo.full_name, issue)
    if found is None:
        return
    theme, issues = found
    for other in issues:
        if other == issue:
            continue
        await repo.upsert_comment(
            other,
            f"shipped:{pr}",
            f"**Autopack:** an improvement for this feedback's theme ({neutral(theme)}) shipped in "
            f"#{pr}: {neutral(title)}. "
            "If it does not solve your case, say so here.",
        )


FLOW = Flow(name=DIGEST, triggers=frozenset(), handler=handle, background=True, args=DigestArgs)
