"""Dependabot pull requests: opened / synchronize / reopened, and CI completing on their branches.

authenticity from GitHub's data (author App, branch, every commit's author, no `.github/` change;
otherwise the PR is a normal PR and nothing here acts) → the update's metadata → the repository's
`dependabot` policy → within policy: approve the head and enable auto-merge, or merge with
`sha=<head>` once every required check is green (a failing check gets a short note, never a merge);
outside policy: `autopack:needs-review`, and for majors, critical packages and security updates an
AI risk summary of the release notes and the manifest diff (once per set of versions). One marked
comment per PR states the decision and the rule, edited on every re-evaluation.
"""

from __future__ import annotations

import json
import time
from typing import Any

from githubkit.exception import GraphQLFailed, RequestFailed

from app.flows.context import FlowContext
from app.flows.registry import Flow
from app.github import git
from app.github.repo import RepoClient
from app.llm.ledger import CallMeta
from app.llm.prompt import Section
from app.metrics import DEPENDABOT
from app.policy import dependabot as policy
from app.policy.diff import fit, from_api
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
_ENABLE_AUTO_MERGE = """mutation($id: ID!, $method: PullRequestMergeMethod!) {
  enablePullRequestAutoMerge(input: {pullRequestId: $id, mergeMethod: $method}) { clientMutationId }
}"""
SUMMARY_INPUT = 6_000  # tokens of release notes and manifest diff


def accepts(payload: dict[str, Any]) -> bool:
    """Pull requests that say they are Dependabot's (authenticity is checked in the flow)."""
    pr = payload.get("pull_request") or {}
    login = str((pr.get("user") or {}).get("login") or "")
    ref = str((pr.get("head") or {}).get("ref") or "")
    return pr.get("state") == "open" and (login.startswith("dependabot") or ref.startswith("dependabot/"))


def ci_accepts(payload: dict[str, Any]) -> bool:
    suite = payload.get("check_suite") or (payload.get("check_run") or {}).get("check_suite") or {}
    branches = [str(suite.get("head_branch") or "")]
    branches += [str(b.get("name") or "") for b in payload.get("branches") or [] if isinstance(b, dict)]
    return any(b.startswith("dependabot/") for b in branches)


async def on_ci(ctx: FlowContext) -> None:
    """CI completed on a Dependabot branch: evaluate its PR again, on the PR's subject."""
    suite = ctx.payload.get("check_suite") or (ctx.payload.get("check_run") or {}).get("check_suite") or {}
    numbers = [int(p["number"]) for p in suite.get("pull_requests") or [] if isinstance(p, dict)]
    if not numbers and ctx.event_name == "status":
        repo = await ctx.repo()
        for branch in ctx.payload.get("branches") or []:
            name = str(branch.get("name") or "")
            if name.startswith("dependabot/"):
                pr = await git.open_pull_for(repo, name)
                if pr is not None:
                    numbers.append(int(pr["number"]))
    for number in numbers[:5]:
        await ctx.inbox.enqueue(
            EVALUATE,
            f"{ctx.repository}#{number}",
            args={"installation_id": ctx.installation_id, "repository": ctx.repository, "number": number},
            dedupe_key=f"dependabot-ci:{ctx.delivery_id}:{number}",
        )


async def handle(ctx: FlowContext) -> None:
    repo = await ctx.repo()
    rules = (await ctx.policy()).policy
    if not rules.dependabot.enabled:
        return
    pr = ctx.payload.get("pull_request") or await repo.pull(int(ctx.payload["number"]))
    if pr.get("state") != "open":
        return
    number = int(pr["number"])
    commits = await repo.pull_commits(number)
    files = await repo.pull_files(number)
    verdict = policy.authentic(pr, commits, files)
    if not verdict.genuine:
        DEPENDABOT.labels("not_genuine").inc()
        ctx.log.warning("not treated as Dependabot", pr=number, reason=verdict.reason)
        return
    message = next(
        (
            str((c.get("commit") or {}).get("message") or "")
            for c in commits
            if "updated-dependencies" in str(c)
        ),
        str(((commits[0].get("commit") or {}).get("message")) or ""),
    )
    update = policy.parse(str(pr.get("title") or ""), str(pr.get("body") or ""), message, pr["head"]["ref"])
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
    state = await _act(ctx, repo, pr, decision, rules) if decision.auto_merge else "waiting for a human"
    DEPENDABOT.labels("auto_merge" if decision.auto_merge else "needs_review").inc()
    ctx.log.info("dependabot update", pr=number, level=update.level, auto=decision.auto_merge, state=state)
    await repo.upsert_comment(
        number, "dependabot", policy.render_comment(update, decision, state, summary, model)
    )


async def _act(
    ctx: FlowContext, repo: RepoClient, pr: dict[str, Any], decision: policy.Decision, rules: RepoPolicy
) -> str:
    """Within policy: approve and merge once the required checks are green. Returns the state."""
    number, head = int(pr["number"]), str(pr["head"]["sha"])
    runs, statuses = await git.ci_for(repo, head)
    ci = ci_state(
        checks_from(runs, statuses, own_app_id=ctx.settings.app_id),
        await git.required_checks(repo, str(pr["base"]["ref"])),
    )
    if ci.failed:
        return f"not merged: failing checks: {', '.join(ci.failed)}"
    await _approve(repo, number, head)
    pending = ci.pending
    if pending:
        if pr.get("node_id"):
            try:
                await repo.gh.async_graphql(
                    _ENABLE_AUTO_MERGE, {"id": pr["node_id"], "method": rules.merge.method.upper()}
                )
                return f"approved; GitHub merges it when the checks pass ({len(pending)} pending)"
            except GraphQLFailed as exc:  # auto-merge off in this repository, or already mergeable
                ctx.log.info("auto-merge unavailable", pr=number, error=str(exc)[:200])
        return f"approved; Autopack merges it when the checks pass ({len(pending)} pending)"
    try:
        await git.merge(repo, number, sha=head, method=rules.merge.method, title=str(pr.get("title") or ""))
    except RequestFailed as exc:
        if exc.response.status_code not in (405, 409):
            raise
        return "approved; GitHub did not merge it yet (the head moved or it is not mergeable)"
    DEPENDABOT.labels("merged").inc()
    return f"merged `{head[:7]}` with every check green"


async def _approve(repo: RepoClient, number: int, head: str) -> None:
    """Approve the head once (this is Dependabot's code, never Autopack's own)."""
    bot = await repo.bot_login()
    reviews = await repo.reviews(number)
    mine = [r for r in reviews if (r.get("user") or {}).get("login") == bot]
    latest = latest_reviews(
        tuple(
            Review(bot, "Bot", str(r.get("state") or ""), str(r.get("commit_id") or ""), int(r["id"]))
            for r in mine
        )
    )
    current = latest.get(bot.lower())
    if current is not None and current.state.upper() == "APPROVED" and current.commit_id == head:
        return
    await git.approve(
        repo, number, head, "Autopack: a genuine Dependabot update within this repository's policy."
    )


async def _summary(
    ctx: FlowContext, repo: RepoClient, pr: dict[str, Any], update: policy.Update, files: list[dict[str, Any]]
) -> tuple[policy.RiskSummary | None, str | None]:
    number = int(pr["number"])
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
        from_api(files),
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
            Section("release_notes", str(pr.get("body") or "")[:12_000]),
            Section("manifest_diff", diff.text or "(none)"),
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
)
CI_FLOW = Flow(
    name="dependencies_ci",
    triggers=frozenset({("check_suite", "completed"), ("check_run", "completed"), ("status", None)}),
    handler=on_ci,
    accepts=ci_accepts,
)
