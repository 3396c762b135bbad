"""`issue_comment.created`, `pull_request_review_comment.created` → `/autopack <command>`:
permission-checked slash commands (DESIGN §5.5).

A command in a review thread (a reply to one of the audit's line comments: `/autopack dismiss`)
sees the pull request as its thread; its reply goes into the pull request's conversation.

Only `created` comments are read (an edit cannot smuggle in a command later), never a bot's (the
App's own included). Each command declares the least permission it needs; the commenter's role is
asked from GitHub at the moment of the command. The comment gets 👀 on receipt, then 👍 when every
command ran or 👎 when one was refused or unknown; refusals and answers go into one reply comment per
command comment, edited in place if the job runs again.

Later issues add their commands with `@command(...)`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from app.events import Comment, Issue, IssueCommentEvent, ReviewCommentEvent, by_bot
from app.flows.context import FlowContext
from app.flows.jobs import AuditArgs, DigestArgs, JobArgs, ProposeArgs, TriageArgs
from app.flows.registry import Flow
from app.github.repo import RepoClient
from app.inbox.dismissals import Dismissal
from app.logs import redactor
from app.metrics import COMMAND_OUTCOMES
from app.policy import render
from app.policy.commands import (
    Decision,
    ParsedCommand,
    Permission,
    authorise,
    parse_commands,
)
from app.policy.proposal import Proposal

DAY = 86_400


@dataclass
class CommandContext:
    flow: FlowContext
    repo: RepoClient
    number: int
    comment_id: int
    sender: str
    command: ParsedCommand
    permission: Permission  # the sender's, asked at the time of the command
    issue: Issue  # the issue or pull request, as an issue object
    review_comment: Comment | None = None  # the command's comment, when in a review thread

    @property
    def subject(self) -> str:
        return f"{self.repo.full_name}#{self.number}"


CommandHandler = Callable[[CommandContext], Awaitable[str]]


@dataclass(frozen=True)
class Command:
    name: str
    permission: Permission
    summary: str
    usage: str
    handler: CommandHandler
    author_allowed: bool = False  # the issue's author may run it without the permission


COMMANDS: dict[str, Command] = {}
CommentEvent = IssueCommentEvent | ReviewCommentEvent


def command(
    name: str,
    permission: Permission,
    summary: str,
    usage: str = "",
    *,
    author_allowed: bool = False,
) -> Callable[[CommandHandler], CommandHandler]:
    """Register a command handler; it returns the Markdown to reply (empty: no reply)."""

    def register(handler: CommandHandler) -> CommandHandler:
        COMMANDS[name] = Command(
            name, permission, summary, usage or f"/autopack {name}", handler, author_allowed
        )
        return handler

    return register


def help_text() -> str:
    rows = [
        f"| `{c.usage}` | {c.summary} | {c.permission.label}"
        + (" (or the issue's author)" if c.author_allowed else "")
        + " |"
        for c in sorted(COMMANDS.values(), key=lambda c: c.name)
    ]
    return "\n".join(
        [
            "**Autopack commands**",
            "",
            "| command | what it does | who may run it |",
            "|---|---|---|",
            *rows,
        ]
    )


@command("help", Permission.READ, "List the commands Autopack understands.")
async def _help(_ctx: CommandContext) -> str:
    return help_text()


@command(
    "retry",
    Permission.WRITE,
    "Run the latest failed or dead Autopack job of this issue or pull request again.",
)
async def _retry(ctx: CommandContext) -> str:
    job = await ctx.flow.inbox.latest_unsuccessful_job(ctx.subject, exclude=ctx.flow.job.id)
    if job is None:
        return "Nothing to retry: no failed or dead Autopack job on this thread."
    await ctx.flow.inbox.requeue(job.id)
    error = redactor.text((job.last_error or "").splitlines()[0] if job.last_error else "")[:300]
    return (
        f"Re-queued the `{job.flow}` job (it had ended **{job.status}** after {job.attempts} "
        f"attempt{'s' if job.attempts != 1 else ''}" + (f": `{error}`" if error else "") + ")."
    )


_SECTION_OF = {"triage": "feedback", "audit": "audit", "propose": "proposals"}


async def _run_flow_now(ctx: CommandContext, flow: str, args: JobArgs) -> str:
    """Queue `flow` for this thread as asked by a command (once per command comment). It runs after
    the command job, on the same subject. Returns the reply: nothing when the flow's own output is
    the answer, or what its mode means when the policy has it in shadow or off."""
    section = _SECTION_OF[flow]
    mode = getattr((await ctx.flow.policy()).policy, section).mode
    if mode == "off":
        return f"`{section}` is off in this repository's policy (`{section}.mode: off`): nothing runs."
    asked = args.model_copy(update={"forced": True})
    await ctx.flow.enqueue(flow, asked, f"{flow}:{ctx.repo.full_name}#{ctx.number}:{ctx.comment_id}")
    if mode == "shadow":
        return (
            f"`{section}` runs in shadow mode here (`{section}.mode: shadow`): Autopack decides and "
            "records what it would write (`autopack shadow`), and writes nothing to this repository."
        )
    return ""


# ---- the flow ----------------------------------------------------------------------------------


def accepts(event: CommentEvent) -> bool:
    """Cheap receiver-side filter: a created comment by a human that has a command line."""
    return not by_bot(event.comment.user) and bool(parse_commands(event.comment.body))


def _thread_of(event: CommentEvent) -> Issue:
    """The issue or pull request the comment is on, as an issue object (a pull request's carries
    `pull_request`, as GitHub's issue objects of pull requests do)."""
    if isinstance(event, IssueCommentEvent):
        return event.issue
    return event.pull_request.as_issue()


async def handle(ctx: FlowContext) -> None:
    event = ctx.event
    if not isinstance(event, CommentEvent):
        raise ctx.unexpected()
    comment = event.comment
    in_review = isinstance(event, ReviewCommentEvent)
    author = comment.user
    if author is None or author.is_bot or by_bot(event.sender):
        ctx.log.info("command ignored: comment by a bot", login=comment.author)
        return
    parsed = parse_commands(comment.body)
    if not parsed:
        return
    repo = await ctx.repo()
    if author.login == await repo.bot_login():
        return
    login = author.login
    issue = _thread_of(event)
    number = issue.number
    issue_author = issue.author
    comment_id = comment.id
    react = repo.react_to_review_comment if in_review else repo.react_to_comment
    await react(comment_id, "eyes")

    permission: Permission | None = None
    replies: list[str] = []
    all_ran = True
    for item in parsed:
        spec = COMMANDS.get(item.name)
        if spec is None:
            all_ran = False
            COMMAND_OUTCOMES.labels("unknown", "unknown").inc()
            replies.append(f"Unknown command {render.code(item.name, limit=40)}.\n\n{help_text()}")
            continue
        if permission is None:
            permission = await repo.permission(login)
        verdict = authorise(
            spec.permission,
            permission,
            is_author=login == issue_author,
            author_allowed=spec.author_allowed,
        )
        if verdict.decision is Decision.REFUSE:
            all_ran = False
            COMMAND_OUTCOMES.labels(spec.name, "refused").inc()
            ctx.log.info("command refused", command=spec.name, user=login, reason=verdict.reason)
            replies.append(
                f"@{login} `/autopack {spec.name}` needs **{spec.permission.label}** permission on "
                f"this repository; you have **{permission.label}**."
            )
            continue
        reply = await spec.handler(
            CommandContext(
                ctx,
                repo,
                number,
                comment_id,
                login,
                item,
                permission,
                issue,
                comment if in_review else None,
            )
        )
        COMMAND_OUTCOMES.labels(spec.name, "ran").inc()
        ctx.log.info("command ran", command=spec.name, user=login)
        if reply:
            replies.append(reply)
    if replies:
        await repo.upsert_comment(number, f"command:{comment_id}", "\n\n---\n\n".join(replies))
    await react(comment_id, "+1" if all_ran else "-1")


FLOW = Flow(
    name="command",
    triggers=frozenset({("issue_comment", "created"), ("pull_request_review_comment", "created")}),
    handler=handle,
    accepts=accepts,
)


@command("usage", Permission.READ, "This repository's LLM tokens and cost in the current budget week.")
async def _usage(ctx: CommandContext) -> str:
    from app.llm.ledger import Ledger, week_start

    now = ctx.flow.inbox.clock()
    start = week_start(now)
    since = dt.datetime(start.year, start.month, start.day, tzinfo=dt.UTC).timestamp()
    rows = await Ledger(ctx.flow.inbox.db).summary(since=since, by="model", repository=ctx.repo.full_name)
    if not rows:
        return f"No LLM calls for `{ctx.repo.full_name}` in the budget week that began {start} (UTC)."
    lines = [
        f"**LLM usage of `{ctx.repo.full_name}` since {start} (UTC, budget week)**",
        "",
        "| model | calls | input tokens | cached | output tokens | cost |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    total = 0.0
    for row in rows:
        total += float(row["cost"])
        lines.append(
            f"| `{row['key']}` | {row['calls']} | {row['input_tokens']:,} | {row['cached_tokens']:,} | "
            f"{row['output_tokens']:,} | ${float(row['cost']):.4f} |"
        )
    lines.append(f"| **total** | | | | | **${total:.4f}** |")
    return "\n".join(lines)


@command(
    "triage",
    Permission.TRIAGE,
    "Triage this issue now (again), even without the feedback label.",
    author_allowed=True,
)
async def _triage(ctx: CommandContext) -> str:
    issue = ctx.issue
    if issue.is_pull:
        return "Triage is for issues, not pull requests."
    if ctx.permission >= Permission.TRIAGE:
        return await _run_flow_now(ctx, "triage", TriageArgs(issue=issue))  # its comment is the answer
    # The issue's author, without triage rights: within the same per-reporter daily limit as
    # feedback they file, so nobody can spend the repository's budget by asking again and again.
    limit = (await ctx.flow.policy()).policy.feedback.rate_limit_per_day
    now = ctx.flow.inbox.clock()
    times = await ctx.flow.triage_log.times(ctx.repo.full_name, ctx.sender, since=now - DAY)
    if len(times) >= limit:
        again = dt.datetime.fromtimestamp(min(times) + DAY, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        return (
            f"As the issue's author you can ask for {limit} triage{'s' if limit != 1 else ''} a day "
            f"in this repository, and today's are used. You can ask again after {again}."
        )
    return await _run_flow_now(ctx, "triage", TriageArgs(issue=issue, by_author=True))


@command("audit", Permission.WRITE, "Audit this pull request now: findings as a review and a check run.")
async def _audit(ctx: CommandContext) -> str:
    if not ctx.issue.is_pull:
        return "`/autopack audit` works on pull requests."
    return await _run_flow_now(ctx, "audit", AuditArgs(number=ctx.number))  # the review and check run answer


@command(
    "propose",
    Permission.WRITE,
    "Write a pull request for this triaged feedback: a test that fails, then the fix, verified by CI.",
    "/autopack propose [--force] [notes]",
)
async def _propose(ctx: CommandContext) -> str:
    from app.flows.building import PREFLIGHT_TOKENS
    from app.inbox.proposals import Proposals
    from app.llm.ledger import BudgetExceeded, CallMeta
    from app.llm.service import NoModelAvailable
    from app.policy.proposal import eligible, parse_propose_args

    issue = ctx.issue
    notes, force = parse_propose_args(ctx.command.args)
    proposals = Proposals(ctx.flow.inbox.db, clock=ctx.flow.inbox.clock)
    verdict = eligible(
        issue=issue,
        triaged=await ctx.flow.triage_log.latest_analysis(ctx.repo.full_name, ctx.number) is not None,
        rejected=await proposals.rejection(ctx.repo.full_name, ctx.number),
        existing=await proposals.get(ctx.repo.full_name, ctx.number),
        force=force,
    )
    if not verdict.ok:
        return verdict.reason
    if ctx.flow.llm is None:
        return "No LLM provider is configured for this Autopack installation."
    try:
        await ctx.flow.llm.preflight(
            CallMeta(ctx.flow.installation_id, ctx.repo.full_name, "build", "builder", "general"),
            "builder",
            "medium",
            PREFLIGHT_TOKENS,
        )
    except BudgetExceeded as exc:
        return f"Not now: {exc.reason}."
    except NoModelAvailable as exc:
        return f"Autopack cannot build proposals here: {exc}."
    # The proposal's comment on this issue is the answer.
    return await _run_flow_now(ctx, "propose", ProposeArgs(issue=issue, notes=notes, force=force))


async def _open_proposal_here(ctx: CommandContext) -> Proposal | None:
    """The open proposal this thread is about: its pull request, or its feedback issue."""
    from app.inbox.proposals import Proposals
    from app.policy.proposal import OPEN

    proposals = Proposals(ctx.flow.inbox.db, clock=ctx.flow.inbox.clock)
    issue = ctx.issue
    proposal = (
        await proposals.by_pr(ctx.repo.full_name, ctx.number)
        if issue.is_pull
        else await proposals.get(ctx.repo.full_name, ctx.number)
    )
    return proposal if proposal is not None and proposal.status in OPEN else None


@command(
    "revise",
    Permission.WRITE,
    "Revise Autopack's pull request for this issue as instructed (then verified by CI again).",
    "/autopack revise <instructions>",
)
async def _revise(ctx: CommandContext) -> str:
    from app.flows.verify import queue_revise

    if not ctx.command.args.strip():
        return "Say what to change: `/autopack revise <instructions>`."
    proposal = await _open_proposal_here(ctx)
    if proposal is None or not proposal.pr_number:
        return "There is no open Autopack proposal here to revise."
    await queue_revise(
        ctx.flow,
        proposal,
        "command",
        key=f"command-{ctx.comment_id}",
        instructions=ctx.command.args[:4_000],
    )
    return f"Revising #{proposal.pr_number} as asked; CI verifies the new commits again."


@command(
    "reject",
    Permission.WRITE,
    "Close Autopack's pull request for this issue and remember why; it is not proposed again unasked.",
    "/autopack reject <reason>",
)
async def _reject(ctx: CommandContext) -> str:
    from app.flows.gate import reject
    from app.github import git

    proposal = await _open_proposal_here(ctx)
    if proposal is None or not proposal.pr_number:
        return "There is no open Autopack proposal here to reject."
    await reject(ctx.flow, ctx.repo, proposal, ctx.command.args.strip()[:2_000], ctx.sender)
    await git.close_pull(ctx.repo, proposal.pr_number)
    return f"Closed #{proposal.pr_number} and noted why; Autopack will not propose this again unasked."


@command("digest", Permission.WRITE, "Post (or update) this week's feedback digest of this repository now.")
async def _digest(ctx: CommandContext) -> str:
    # On the repository's subject, where the scheduled digest runs too: never two at once.
    await ctx.flow.enqueue(
        "digest", DigestArgs(forced=True), f"digest:{ctx.repo.full_name}:command-{ctx.comment_id}"
    )
    return "Writing this week's feedback digest; it appears as an issue labelled `autopack:digest`."


# ---- remembered dismissals of audit findings ---------------------------------------------------


@command(
    "dismiss",
    Permission.WRITE,
    "In the thread of one of Autopack's audit findings: not worth your time, never posted here again.",
    "/autopack dismiss [reason]",
)
async def _dismiss(ctx: CommandContext) -> str:
    from app.inbox.dismissals import Dismissals
    from app.policy import dismissals

    parent_id = ctx.review_comment.in_reply_to_id if ctx.review_comment is not None else None
    if not parent_id:
        return (
            "Reply with `/autopack dismiss [reason]` in the thread of the audit finding you mean "
            "(one of Autopack's line comments)."
        )
    parent = await ctx.repo.review_comment(parent_id)
    own = parent is not None and parent.author == await ctx.repo.bot_login()
    fp = dismissals.print_in(parent.body or "") if parent is not None and own else None
    if parent is None or fp is None:
        return "That thread is not one of Autopack's audit findings: nothing to dismiss."
    signal = dismissals.Signal(
        fp,
        dismissals.title_in(parent.body or ""),
        parent.path or "",
        ctx.sender,
        "command",
        " ".join(ctx.command.args.split())[:500],
    )
    added = await Dismissals(ctx.flow.inbox.db, clock=ctx.flow.inbox.clock).add(ctx.repo.full_name, signal)
    first = "Dismissed" if added else "Already dismissed"
    return (
        f"{first}: Autopack will not post {render.code(signal.title or fp, limit=120)} on "
        f"`{render.plain(signal.path, limit=200)}` again in this repository. "
        f"`/autopack forget {fp}` brings it back."
    )


@command(
    "learnings", Permission.READ, "The audit findings this repository dismissed: who, why, and their ids."
)
async def _learnings(ctx: CommandContext) -> str:
    from app.inbox.dismissals import Dismissals

    known = await Dismissals(ctx.flow.inbox.db).all(ctx.repo.full_name)
    return render_learnings(ctx.repo.full_name, known)


def render_learnings(repository: str, known: list[Dismissal]) -> str:
    """The table `/autopack learnings` answers: models' titles and people's reasons made inert."""
    if not known:
        return f"No audit finding has been dismissed in `{repository}`."
    rows = [
        f"| `{d.fingerprint}` | {_cell(d.title)} | {_cell(d.path)} | @\u2060{_cell(d.dismissed_by)} "
        f"| {_SOURCES.get(d.source, d.source)} | {_cell(d.reason) or '—'} "
        f"| {dt.datetime.fromtimestamp(d.created_at, dt.UTC):%Y-%m-%d} |"
        for d in known[:100]
    ]
    more = ["", f"… and {len(known) - 100} more."] if len(known) > 100 else []
    return "\n".join(
        [
            f"**Audit findings dismissed in `{repository}`** — never posted again here; "
            "`/autopack forget <id>` brings one back.",
            "",
            "| id | finding | file | by | how | why | when |",
            "|---|---|---|---|---|---|---|",
            *rows,
            *more,
        ]
    )


@command(
    "forget",
    Permission.WRITE,
    "Forget one dismissed audit finding: it may be posted again.",
    "/autopack forget <id>",
)
async def _forget(ctx: CommandContext) -> str:
    from app.inbox.dismissals import Dismissals

    fp = ctx.command.args.strip().split(" ", 1)[0].lower()
    if not fp:
        return "Say which: `/autopack forget <id>` (`/autopack learnings` lists the ids)."
    forgotten = await Dismissals(ctx.flow.inbox.db).forget(ctx.repo.full_name, fp)
    if not forgotten:
        return f"No dismissed finding {render.code(fp, limit=40)} in this repository (`/autopack learnings`)."
    return f"Forgot `{fp}`: the audit may report that finding again."


_SOURCES = {"resolved": "resolved the thread", "thumbs_down": "👎", "command": "`/autopack dismiss`"}


def _cell(text: str) -> str:
    """Untrusted text (a model's title, a person's reason) as one inert table cell."""
    return render.plain(text, limit=160).replace("|", "\\|")
