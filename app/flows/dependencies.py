"""Dependabot pull requests: opened / synchronize / reopened, and CI completing on their branches.

The PR as it is now → authenticity from GitHub's data (author App, branch, every commit authored by
Dependabot and committed and signed by GitHub, no `.github/` change; otherwise it is a normal PR)
→ the update's metadata → the repository's `dependabot` policy → within policy, bound to the head
just judged: approve it, and merge with `sha=<head>` once every check is green, or let GitHub merge
it (auto-merge with `expectedHeadOid=<head>`) when the branch's required checks are known. No
check at all is "not yet", never green: after `dependabot.ci_timeout_minutes` without one, a human
decides. Outside policy: `autopack:needs-review`, and for majors, critical packages and security
updates an AI risk summary of the release notes and the manifest diff (once per set of versions).

When a later evaluation finds that the PR no longer qualifies (a foreign commit, a `.github/`
change, a failing check, a policy change), Autopack disables the auto-merge it enabled and dismisses
its own approval, with the reason. One marked comment per PR says all of it, edited in place.
"""

from __future__ import annotations

import datetime as dt
import json
import time

from githubkit.exception import GraphQLFailed, RequestFailed

from app.events import CIEvent, Commit, PullRequest, PullRequestEvent, StatusEvent, ci_pulls, ci_target
from app.flows.context import FlowContext
from app.flows.jobs import DependencyArgs
from app.flows.registry import Flow
from app.github import git
from app.github.repo import RepoClient
from app.llm.ledger import CallMeta
from app.llm.prompt import Section
from app.metrics import DEPENDABOT
from app.policy import dependabot as policy
from app.policy.diff import FileDiff, fit
from app.policy.gate import Review, ci_state, latest_reviews
from app.policy.labels import LabelSpec
from app.policy.proposal import checks_from
from app.policy.repo_policy import RepoPolicy

EVALUATE = "dependencies"
_LABELS = {
    "security": LabelSpec("security", "b60205", "A security update"),
    "autopack:needs-review": LabelSpec(
        "autopack:needs-review", "fbca04", "Autopack will not merge this by itself: a human decides"
    ),
}
SUMMARY_INPUT = 6_000  # tokens of release notes and manifest diff


def accepts(event: PullRequestEvent) -> bool:
    """Pull requests that say they are Dependabot's (authenticity is checked in the flow)."""
    pr = event.pull_request
    return pr.state == "open" and (
        pr.author.startswith("dependabot") or pr.head.ref.startswith("dependabot/")
    )


def ci_accepts(event: CIEvent) -> bool:
    return any(b.startswith("dependabot/") for b in ci_target(event)[1])


async def on_ci(ctx: FlowContext) -> None:
    """CI completed on a Dependabot branch: evaluate its PR again, on the PR's subject."""
    if not isinstance(ctx.event, CIEvent):
        raise ctx.unexpected()
    numbers = list(ci_pulls(ctx.event))
    if not numbers and isinstance(ctx.event, StatusEvent):
        repo = await ctx.repo()
        for name in ci_target(ctx.event)[1]:
            if name.startswith("dependabot/"):
                pr = await git.open_pull_for(repo, name)
                if pr is not None:
                    numbers.append(pr.number)
    for number in numbers[:5]:
        await ctx.enqueue(
            EVALUATE, DependencyArgs(number=number), f"dependabot-ci:{ctx.delivery_id}:{number}"
        )


async def handle(ctx: FlowContext) -> None:
    repo = await ctx.repo()
    rules = (await ctx.policy()).policy
    asked = ctx.args_as(DependencyArgs) if ctx.args is not None else None  # CI reported, or never did
    number = asked.number if asked else ctx.event_as(PullRequestEvent).pull_request.number
    pr = await repo.pull(number)  # now, not as the event saw it: the head judged is the head bound
    if pr.state != "open":
        return
    commits = await repo.pull_commits(number)
    files = await repo.pull_files(number)
    head = pr.head.sha
    if commits and commits[-1].sha != head:
        ctx.log.info("the head moved while reading the pull request; its event decides", pr=number)
        return
    verdict = policy.authentic(pr, commits, files)
    if not verdict.genuine:
        DEPENDABOT.labels("not_genuine").inc()
        ctx.log.warning("not treated as Dependabot", pr=number, reason=verdict.reason)
        withdrew = rules.dependabot.enabled and await _withdraw(ctx, repo, pr, verdict.reason)
        if withdrew:
            await repo.upsert_comment(number, "dependabot", policy.render_withdrawn(head, verdict.reason))
        return
    if not rules.dependabot.enabled:
        return
    message = next((c.message for c in commits if "updated-dependencies" in c.message), commits[0].message)
    update = policy.parse(pr.title, pr.body or "", message, pr.head.ref)
    decision = policy.decide(update, rules.dependabot)
    if decision.labels:
        await repo.add_labels(number, [_LABELS[name] for name in decision.labels])
    if update.security and (rules.dependabot.security_reviewers or rules.dependabot.security_team_reviewers):
        await git.request_reviewers(
            repo, number, rules.dependabot.security_reviewers, rules.dependabot.security_team_reviewers
        )
    summary, model = None, None
    if decision.summarise and ctx.llm is not None:
        summary, model = await _summary(ctx, repo, pr, update, files)
    if decision.auto_merge:
        state = await _act(ctx, repo, pr, commits, rules)
    else:
        state = "waiting for a human"
        if await _withdraw(ctx, repo, pr, f"outside this repository's policy: {decision.rule}"):
            state += "; Autopack withdrew its approval and auto-merge"
    DEPENDABOT.labels("auto_merge" if decision.auto_merge else "needs_review").inc()
    ctx.log.info("dependabot update", pr=number, level=update.level, auto=decision.auto_merge, state=state)
    await repo.upsert_comment(
        number, "dependabot", policy.render_comment(update, decision, state, summary, model)
    )


async def _act(
    ctx: FlowContext, repo: RepoClient, pr: PullRequest, commits: list[Commit], rules: RepoPolicy
) -> str:
    """Within policy: approve the judged head and merge it once its checks are green, bound to that
    head (`sha` on merge, `expectedHeadOid` on auto-merge). Returns the state for the comment."""
    number, head = pr.number, pr.head.sha
    runs, statuses = await git.ci_for(repo, head)
    required = await git.required_checks(repo, pr.base.ref)
    ci = ci_state(
        checks_from(runs, statuses, own_app_id=ctx.settings.app_id),
        required,
        no_ci_expected=not rules.dependabot.require_checks,
    )
    if ci.failed:
        failing = ", ".join(ci.failed)
        withdrew = await _withdraw(ctx, repo, pr, f"failing checks on `{head[:7]}`: {failing}")
        return f"not merged: failing checks: {failing}" + ("; approval withdrawn" if withdrew else "")
    if ci.none_yet:
        return await _no_checks_yet(ctx, repo, pr, commits, rules)
    await _approve(repo, number, head)
    if ci.pending:
        # GitHub's auto-merge waits only for *required* checks: with none known, Autopack merges
        # itself when every check is green (CI events bring it back here).
        if required is not None and pr.node_id:
            try:
                await git.enable_auto_merge(repo, pr.node_id, method=rules.merge.method, head=head)
                return (
                    f"approved `{head[:7]}`; GitHub merges it when the required checks pass "
                    f"({len(ci.pending)} pending), and only while this commit is the head"
                )
            except GraphQLFailed as exc:  # auto-merge off in this repository
                ctx.log.info("auto-merge unavailable", pr=number, error=str(exc)[:200])
        return f"approved `{head[:7]}`; Autopack merges it when the checks pass ({len(ci.pending)} pending)"
    try:
        await git.merge(repo, number, sha=head, method=rules.merge.method, title=pr.title)
    except RequestFailed as exc:
        if exc.response.status_code not in (405, 409):
            raise
        return "approved; GitHub did not merge it yet (the head moved or it is not mergeable)"
    DEPENDABOT.labels("merged").inc()
    if ci.total == 0:
        return f"merged `{head[:7]}` without CI (`dependabot.require_checks` is off)"
    return f"merged `{head[:7]}` with every check green"


async def _no_checks_yet(
    ctx: FlowContext, repo: RepoClient, pr: PullRequest, commits: list[Commit], rules: RepoPolicy
) -> str:
    """No check has reported on the head: CI has not started, or the repository has none. Wait (an
    evaluation is scheduled for the deadline), then leave it for a human; never green."""
    number, head = pr.number, pr.head.sha
    limit = rules.dependabot.ci_timeout_minutes
    since = _committed_at(commits[-1]) if commits else None
    now = ctx.inbox.clock()
    deadline = (since or now) + limit * 60
    if now < deadline:
        await ctx.enqueue(
            EVALUATE,
            DependencyArgs(number=number),
            f"dependabot-no-ci:{repo.full_name}#{number}:{head}",
            run_at=deadline + 5,
        )
        return (
            f"waiting for CI: no check has reported on `{head[:7]}` yet "
            f"(a human decides after {limit} minutes without one)"
        )
    await repo.add_labels(number, [_LABELS["autopack:needs-review"]])
    withdrew = await _withdraw(ctx, repo, pr, f"no CI reported on `{head[:7]}`")
    return (
        f"left for a human: no check reported on `{head[:7]}` within {limit} minutes "
        "(set `dependabot.require_checks: false` to merge updates without CI)"
        + ("; approval withdrawn" if withdrew else "")
    )


def _committed_at(commit: Commit) -> float | None:
    committer = commit.commit.committer
    text = (committer.date if committer is not None else None) or ""
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


async def _withdraw(ctx: FlowContext, repo: RepoClient, pr: PullRequest, reason: str) -> bool:
    """The PR no longer qualifies: disable the auto-merge Autopack enabled and dismiss its approval,
    with the reason. True when there was anything to withdraw."""
    number = pr.number
    bot = await repo.bot_login()
    withdrew = False
    enabled_by = pr.auto_merge.enabled_by if pr.auto_merge is not None else None
    if enabled_by is not None and enabled_by.login.lower() == bot.lower() and pr.node_id:
        await git.disable_auto_merge(repo, pr.node_id)
        withdrew = True
    current = await _own_position(repo, number)
    if current is not None and current.state.upper() == "APPROVED":
        await git.dismiss_review(repo, number, current.order, f"Autopack: {reason}.")
        withdrew = True
    if withdrew:
        DEPENDABOT.labels("withdrawn").inc()
        ctx.log.warning("approval and auto-merge withdrawn", pr=number, reason=reason)
    return withdrew


async def _own_position(repo: RepoClient, number: int) -> Review | None:
    """Autopack's latest approval, change request or dismissal on the pull request."""
    bot = await repo.bot_login()
    return latest_reviews(tuple(await repo.reviews(number))).get(bot.lower())


async def _approve(repo: RepoClient, number: int, head: str) -> None:
    """Approve the head once (this is Dependabot's code, never Autopack's own)."""
    current = await _own_position(repo, number)
    if current is not None and current.state.upper() == "APPROVED" and current.commit_id == head:
        return
    await git.approve(
        repo, number, head, "Autopack: a genuine Dependabot update within this repository's policy."
    )


async def _summary(
    ctx: FlowContext, repo: RepoClient, pr: PullRequest, update: policy.Update, files: list[FileDiff]
) -> tuple[policy.RiskSummary | None, str | None]:
    number = pr.number
    key = policy.versions_key(update)
    cached = await ctx.inbox.db.run(
        lambda tx: tx.fetchone(
            "SELECT summary FROM dependency_reviews WHERE repository = ? AND pr_number = ? AND versions = ?",
            (repo.full_name, number, key),
        )
    )
    if cached:
        data = json.loads(cached["summary"])
        return policy.RiskSummary.model_validate(data["summary"]), str(data["model"])
    diff = fit(
        files,
        budget_tokens=SUMMARY_INPUT // 2,
        count=lambda t: len(t) // 3,
        priority=lambda f: 1 if "lock" in f.path.lower() else 0,  # manifests before lock files
    )
    usage = await _usage(repo, update)
    assert ctx.llm is not None
    answer = await ctx.llm.ask(
        policy.RiskSummary,
        template="dependency_review",
        sections=[
            Section("update", update.describe()),
            Section("release_notes", (pr.body or "")[:12_000]),
            Section("manifest_diff", diff.text or "(none)", kind="code"),
            Section("where_this_repository_uses_it", usage),
        ],
        call=CallMeta(
            ctx.installation_id,
            repo.full_name,
            "dependency_review",
            "analyst",
            "external_feature_reuse",
            ctx.job.id,
            ctx.delivery_id,
        ),
        role="analyst",
        complexity="high" if update.security or update.level == "major" else "medium",
        values={"repository": repo.full_name},
        max_output=2_000,
    )
    await ctx.inbox.db.run(
        lambda tx: tx.execute(
            "INSERT INTO dependency_reviews (repository, pr_number, versions, summary, created_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (
                repo.full_name,
                number,
                key,
                json.dumps({"summary": answer.value.model_dump(), "model": answer.model}),
                time.time(),
            ),
        )
    )
    return answer.value, answer.model


async def _usage(repo: RepoClient, update: policy.Update) -> str:
    """Files of this repository that mention the updated packages (code search; best effort)."""
    lines: list[str] = []
    for dep in update.dependencies[:3]:
        try:
            response = await repo.gh.arequest(
                "GET",
                "/search/code",
                params={"q": f'"{dep.name}" repo:{repo.full_name}', "per_page": 20},
            )
        except RequestFailed:
            lines.append(f"{dep.name}: (code search unavailable)")
            continue
        paths = sorted({str(item.get("path")) for item in response.json().get("items") or []})
        lines.append(f"{dep.name}: " + (", ".join(paths) if paths else "no file found"))
    return "\n".join(lines) or "(unknown)"


FLOW = Flow(
    name=EVALUATE,
    triggers=frozenset({("pull_request", a) for a in ("opened", "synchronize", "reopened")}),
    handler=handle,
    accepts=accepts,
    section="dependabot",
    args=DependencyArgs,
)
CI_FLOW = Flow(
    name="dependencies_ci",
    triggers=frozenset({("check_suite", "completed"), ("check_run", "completed"), ("status", None)}),
    handler=on_ci,
    accepts=ci_accepts,
    section="dependabot",
)
