"""`pull_request` opened / synchronize / reopened / ready_for_review, or `/autopack audit` → one audit.

policy (`audit.auto`: bot_prs | all | off, decided by `policy.audit.unasked_skip`) → one review per
head commit (skip a head already audited)
→ files and patches (paginated), commits → categories, complexity, risk (code) → the routed auditor,
and the secondary auditor where the routing names one (the stricter verdict wins) → floors, code
-found reviewer instructions, findings not already reported → a COMMENT review (line comments only
on lines the diff shows; none when there is nothing new to say) and the "Autopack audit" check run
with batched annotations.
"""

from __future__ import annotations

import re
from dataclasses import replace

from githubkit.exception import RequestFailed

from app.events import CheckRun, PullRequest, PullRequestEvent
from app.flows import learnings
from app.flows.context import FlowContext
from app.flows.jobs import AuditArgs, VerifyStepArgs
from app.flows.proposal_state import VERIFY_STEP
from app.flows.registry import Flow
from app.github.repo import RepoClient
from app.inbox.audit_reports import AuditReports
from app.inbox.dismissals import Dismissals
from app.llm.ledger import CallMeta
from app.llm.prompt import Section
from app.llm.router import Role
from app.llm.service import TASK_INPUT_BUDGET
from app.llm.tokens import counter_for
from app.metrics import AUDITS
from app.policy import audit, dismissals
from app.policy.audit_report import AuditReport, Change, Opinion, Scope, assess
from app.policy.diff import FileDiff, fit
from app.policy.gate import Review
from app.policy.proposal import issue_of_branch
from app.policy.repo_policy import RepoPolicy

CHECK_NAME = "Autopack audit"
_MARKER = re.compile(
    r"<!-- autopack:audit:(?P<sha>[0-9a-f]{7,40})(?: fp=(?P<fps>[0-9a-f,]*))?(?: v=(?P<verdict>\w+))? -->"
)
PROMPT_OVERHEAD = 3_000  # system rules, task, PR title/body and commits: the diff gets the rest


def accepts(event: PullRequestEvent) -> bool:
    """Open, non-draft pull requests (a draft is audited when it is marked ready for review)."""
    return event.pull_request.state == "open" and not event.pull_request.draft


async def handle(ctx: FlowContext) -> None:
    repo = await ctx.repo()
    asked = ctx.args_as(AuditArgs) if ctx.args is not None else None  # a command, or a proposal's fix
    pr = await repo.pull(asked.number) if asked else ctx.event_as(PullRequestEvent).pull_request
    number, head = pr.number, pr.head.sha
    rules = (await ctx.policy()).policy
    if not (asked and asked.forced) and await _not_asked(ctx, repo, pr, rules):
        return
    reported, posted = await _earlier_reviews(repo, number, head)
    reports = AuditReports(ctx.inbox.db, clock=ctx.inbox.clock)
    stored = await reports.get(repo.full_name, number, head)
    if posted is not None or stored is not None:
        await _complete(ctx, repo, pr, head, posted, stored)
        return

    threads = await repo.review_threads(number)
    await learnings.remember(ctx, repo, dismissals.signals(threads, await repo.bot_login()))
    files = await repo.pull_files(number)
    commits = await repo.pull_commits(number)
    report = await audit_change(
        ctx,
        repo,
        rules,
        files=files,
        head=head,
        title=pr.title,
        body=pr.body or "",
        commit_messages=[c.message for c in commits],
        reported=reported,
    )
    gone = dismissals.no_longer_apply(threads, await repo.bot_login(), set(report.prints))
    report = replace(report, resolve=tuple(gone))
    await reports.put(repo.full_name, number, head, report)  # before anything is posted
    if report.review:
        await _post_review(ctx, repo, number, head, report)
    await _post_check(repo, head, report)
    await _resolve_threads(repo, list(report.resolve))
    AUDITS.labels(report.verdict).inc()
    ctx.log.info(
        "audited", pr=number, head=head, verdict=report.verdict, title=report.title, review=report.review
    )
    await _report_to_proposal(ctx, pr, head, report.verdict, list(report.findings))


async def _not_asked(ctx: FlowContext, repo: RepoClient, pr: PullRequest, rules: RepoPolicy) -> bool:
    """A pull request nobody asked to audit (`audit.auto` and its author decide): counted, logged."""
    skip = audit.unasked_skip(
        rules.audit.auto if rules.audit.enabled else "off",
        author=pr.author,
        author_type=pr.user.type if pr.user is not None else "",
        own_bot=await repo.bot_login(),
        bot_authors=rules.audit.bot_authors,
        dependabot_flow=rules.dependabot.enabled,
    )
    if skip is not None:
        AUDITS.labels(f"skipped_{skip}").inc()
        ctx.log.info("audit not asked for", pr=pr.number, reason=skip)
    return skip is not None


async def _resolve_threads(repo: RepoClient, thread_ids: list[str]) -> None:
    """Autopack's own threads whose finding the new head no longer has: resolved, so the
    conversation shows only what is still open."""
    for thread_id in thread_ids:
        await repo.resolve_thread(thread_id)


async def _earlier_reviews(repo: RepoClient, number: int, head: str) -> tuple[set[str], Review | None]:
    """The fingerprints Autopack's earlier reviews reported, and its review of `head` if any."""
    bot = await repo.bot_login()
    reported: set[str] = set()
    posted: Review | None = None
    for review in await repo.reviews(number):
        if review.reviewer != bot:
            continue
        match = _MARKER.search(review.body)
        if match is None:
            continue
        if head.startswith(match["sha"]) or review.commit_id == head:
            posted = review
            continue
        reported.update(fp for fp in (match["fps"] or "").split(",") if fp)
    return reported, posted


async def reported_prints(repo: RepoClient, number: int) -> set[str]:
    """What Autopack's reviews of this pull request reported already (not said again)."""
    return (await _earlier_reviews(repo, number, ""))[0]


async def audit_change(
    ctx: FlowContext,
    repo: RepoClient,
    rules: RepoPolicy,
    *,
    files: list[FileDiff],
    head: str,
    title: str,
    body: str,
    commit_messages: list[str],
    reported: set[str],
) -> AuditReport:
    """Ask the routed auditor (and the secondary one where the routing names it) about a change,
    and let `policy.audit_report.assess` decide the report to post or to act on before a push."""
    extra: dict[str, list[str]] = {str(k): list(v) for k, v in rules.audit.categories.items()}
    known = await Dismissals(ctx.inbox.db).all(repo.full_name)
    scope = Scope.of(files, extra)
    fitted = fit(
        files,
        budget_tokens=TASK_INPUT_BUDGET["audit"] - PROMPT_OVERHEAD,
        count=counter_for("anthropic").count,  # the conservative estimate fits every auditor
        priority=lambda f: audit.priority(f, extra),
    )
    sections = [
        Section("pr_title", title),
        Section("pr_body", body[:4_000]),
        Section("commit_messages", "\n".join(m.splitlines()[0][:200] for m in commit_messages[:50] if m)),
        # A credential in the diff is not sent on to a model provider (the push audit reports it).
        Section("diff", fitted.text, kind="code"),  # every line is redacted when the prompt is built
        Section("not_shown", "\n".join((*fitted.summarised, *fitted.omitted)) or "(nothing)"),
        # Kinds of findings this repository's writers dismissed: bounded, and data like the rest.
        Section("dismissed_before", dismissals.for_prompt([(d.title, d.path, d.reason) for d in known])),
    ]
    opinions: list[Opinion] = []
    roles: tuple[Role, ...] = ("auditor", "secondary_auditor")
    for role in roles:
        if role == "secondary_auditor" and not ctx.llm_has("audit", role, scope.level, scope.category):
            continue
        assert ctx.llm is not None
        answer = await ctx.llm.ask(
            audit.AuditAnswer,
            template="audit",
            sections=sections,
            call=CallMeta(
                ctx.installation_id,
                repo.full_name,
                "audit",
                role,
                scope.category,
                ctx.job.id,
                ctx.delivery_id,
            ),
            role=role,
            complexity=scope.level,
            values={"repository": repo.full_name},
            max_output=4_000,
        )
        tokens = answer.input_tokens + answer.output_tokens
        opinions.append(Opinion(role, answer.model, answer.value, tokens, answer.cost, answer.notes))
    return assess(
        Change(head, files, scope, fitted.omitted, fitted.summarised),
        opinions,
        floors=audit.Floors(
            rules.audit.min_severity, rules.audit.min_confidence, rules.audit.max_line_comments
        ),
        dismissed={d.fingerprint for d in known},
        reported=reported,
    )


async def _complete(
    ctx: FlowContext,
    repo: RepoClient,
    pr: PullRequest,
    head: str,
    posted: Review | None,
    stored: AuditReport | None,
) -> None:
    """This head was audited (its report is stored, or its review exists): post whatever of the
    review and the check run is missing, never a second review. Done only when both exist."""
    number = pr.number
    if stored is None:  # a review from before reports were stored: it is all there is
        assert posted is not None
        body = posted.body
        match = _MARKER.search(body)
        verdict = (match["verdict"] if match else None) or "comment"
        stored = AuditReport(
            verdict=verdict,
            review=True,
            marker=match[0] if match else "",
            summary=_MARKER.sub("", body).strip(),
            comments=(),
            prints=(),
            summary_without_comments="",
            title=f"{verdict}: see the review",
            annotations=(),
            findings=(),
        )
    missing = []
    if posted is None and stored.review:  # a quiet audit has no review to complete
        missing.append("review")
        await _post_review(ctx, repo, number, head, stored)
    if not await _has_check(ctx, repo, head):
        missing.append("check run")
        await _post_check(repo, head, stored)
    await _resolve_threads(repo, list(stored.resolve))
    AUDITS.labels("completed" if missing else "skipped_already_audited").inc()
    ctx.log.info("head already audited", pr=number, head=head, completed=missing)
    await _report_to_proposal(ctx, pr, head, stored.verdict, list(stored.findings))


async def _post_review(
    ctx: FlowContext, repo: RepoClient, number: int, head: str, report: AuditReport
) -> None:
    comments = list(report.comments)
    try:
        await repo.comment_review(number, head, f"{report.summary}\n\n{report.marker}", comments)
    except RequestFailed as exc:
        if exc.response.status_code != 422 or not comments:
            raise
        ctx.log.warning("review line comments refused; posting them in the summary", pr=number)
        await repo.comment_review(number, head, f"{report.check_summary}\n\n{report.marker}", [])


async def _post_check(repo: RepoClient, head: str, report: AuditReport) -> None:
    await repo.report_check(
        head,
        CHECK_NAME,
        conclusion=audit.check_conclusion(report.verdict),
        title=report.title,
        summary=report.check_summary,
        annotations=list(report.annotations),
    )


async def _has_check(ctx: FlowContext, repo: RepoClient, head: str) -> bool:
    """Whether Autopack's own audit check run exists on this head."""
    response = await repo.gh.arequest(
        "GET",
        f"/repos/{repo.full_name}/commits/{head}/check-runs",
        params={"check_name": CHECK_NAME, "per_page": 100},
    )
    runs = [CheckRun.model_validate(r) for r in response.json().get("check_runs") or []]
    return any(run.name == CHECK_NAME and run.by_app(ctx.settings.app_id) for run in runs)


async def _report_to_proposal(
    ctx: FlowContext, pr: PullRequest, head: str, verdict: str, findings: list[str]
) -> None:
    """An Autopack proposal's PR: the verdict goes to its `verify_step` (ready, or revise)."""
    issue = issue_of_branch(pr.head.ref)
    if issue is None or ctx.repository is None or pr.head.repo_name != pr.base.repo_name:
        return
    await ctx.enqueue(
        VERIFY_STEP,
        VerifyStepArgs(issue=issue, kind="audit", sha=head, verdict=verdict, findings=tuple(findings[:20])),
        f"audit-result:{ctx.repository}#{pr.number}:{head}",
    )


FLOW = Flow(
    name="audit",
    triggers=frozenset(
        {("pull_request", a) for a in ("opened", "synchronize", "reopened", "ready_for_review")}
    ),
    handler=handle,
    accepts=accepts,
    section="audit",
    args=AuditArgs,
)
