"""`push` to the default branch (and the policy's `push.branches`) → secrets, risk, outdated models.

the pushed change (`before...after` from the merge base, so a forced push shows what it brings; a
new branch against the default branch; a deleted branch is skipped; over 300 files, commit by
commit, or the truncation is stated) → "Autopack secrets": a failing check run with an annotation
per secret, redacted, or a success → the audit engine's categories and risk score; at or above
`push.risk_threshold`, or touching `push.audit_categories`, the routed audit as an "Autopack audit"
check run on the pushed commit (the diff sent with found secrets redacted) → model configuration
files (`push.model_globs`) checked against the model catalogue: an "Autopack models" check run with
a warning per legacy, deprecated or retired name and its replacement.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
from typing import Any

from app.events import PushEvent
from app.flows.audit import CHECK_NAME
from app.flows.context import FlowContext
from app.flows.registry import Flow
from app.github import git
from app.github.repo import RepoClient
from app.llm.config import builtin_catalogue
from app.llm.ledger import CallMeta
from app.llm.prompt import Section
from app.llm.service import TASK_INPUT_BUDGET
from app.llm.tokens import counter_for
from app.metrics import PUSH_AUDITS
from app.policy import audit, secrets
from app.policy.audit_report import Change, CheckReport, Opinion, Scope, assess_push, secrets_check
from app.policy.diff import FileDiff, fit
from app.policy.model_names import ModelStatus, outdated
from app.policy.repo_policy import RepoPolicy

ZERO = "0" * 40
SECRETS_CHECK = "Autopack secrets"
MODELS_CHECK = "Autopack models"
MAX_COMMITS = 20  # commits read one by one when a comparison is truncated (the webhook lists 20)
PROMPT_OVERHEAD = 2_000


def accepts(event: PushEvent) -> bool:
    return event.ref.startswith("refs/heads/") and not event.deleted and event.after not in (None, ZERO)


async def handle(ctx: FlowContext) -> None:
    push = ctx.event_as(PushEvent)
    branch = push.ref.removeprefix("refs/heads/")
    default = ctx.default_branch
    rules = (await ctx.policy()).policy
    if not rules.push.enabled:
        return
    if branch != default and not any(fnmatch.fnmatchcase(branch, g) for g in rules.push.branches):
        PUSH_AUDITS.labels("skipped_branch").inc()
        return
    repo = await ctx.repo()
    after = str(push.after)
    diffs, note = await _changes(repo, push, branch, default)
    result = secrets.scan_diffs(diffs, allow_paths=rules.push.secrets_allow_paths)
    extra = {str(k): list(v) for k, v in rules.audit.categories.items()}
    scope = Scope.of(diffs, extra)
    checked = secrets_check(result, scope.risk, threshold=rules.push.risk_threshold, note=note)
    await _report(repo, after, SECRETS_CHECK, checked)
    PUSH_AUDITS.labels("secrets_found" if result.findings else "clean").inc()
    ctx.log.info(
        "push audited",
        branch=branch,
        after=after,
        files=len(diffs),
        secrets=len(result.findings),
        risk=scope.risk.score,
    )
    risky = scope.risk.score >= rules.push.risk_threshold
    if (risky or bool(set(scope.found) & set(rules.push.audit_categories))) and ctx.llm is not None and diffs:
        messages = [c.message for c in push.commits[:50]]
        await _audit(ctx, repo, rules, Change(after, diffs, scope), messages, extra)
    await _check_models(ctx, repo, after, diffs, rules)


async def _report(repo: RepoClient, sha: str, name: str, report: CheckReport) -> None:
    await repo.report_check(
        sha,
        name,
        conclusion=report.conclusion,
        title=report.title,
        summary=report.summary,
        annotations=list(report.annotations),
    )


async def _changes(
    repo: RepoClient, push: PushEvent, branch: str, default: str
) -> tuple[list[FileDiff], str]:
    """The pushed change and a note when it could not be read whole."""
    before, after = push.before or ZERO, str(push.after)
    if push.created or before == ZERO:
        if branch == default:  # a new default branch: its commits are all there is
            files: list[FileDiff] = []
            for commit in push.commits[:MAX_COMMITS]:
                files += await git.commit_files(repo, commit.id)
            return files, ""
        base = default
    else:
        base = before
    files = await git.compare(repo, base, after)
    if len(files) < git.COMPARE_FILE_LIMIT:
        return files, ""
    # GitHub stops listing at 300 files: read the pushed commits one by one instead.
    pushed = [c.id for c in push.commits]
    by_path: dict[str, FileDiff] = {}
    for sha in pushed[:MAX_COMMITS]:
        for entry in await git.commit_files(repo, sha):
            by_path[entry.path] = entry  # a later commit's patch of a file wins
    note = ""
    if len(pushed) > MAX_COMMITS or (push.size or len(pushed)) > len(pushed):
        note = (
            f"The push changes more than {git.COMPARE_FILE_LIMIT} files and more than {MAX_COMMITS} commits: "
            f"only the first {min(len(pushed), MAX_COMMITS)} commits were scanned."
        )
    return list(by_path.values()), note


async def _audit(
    ctx: FlowContext,
    repo: RepoClient,
    rules: RepoPolicy,
    change: Change,
    commit_messages: list[str],
    extra: dict[str, list[str]],
) -> None:
    """The routed audit of a risky push, reported on the pushed commit (no PR: no review comments)."""
    assert ctx.llm is not None
    fitted = fit(
        change.files,
        budget_tokens=TASK_INPUT_BUDGET["push_audit"] - PROMPT_OVERHEAD,
        count=counter_for("anthropic").count,
        priority=lambda f: audit.priority(f, extra),
    )
    messages = "\n".join((m.splitlines() or [""])[0][:200] for m in commit_messages)
    answer = await ctx.llm.ask(
        audit.AuditAnswer,
        template="push_audit",
        sections=[
            Section("commit_messages", messages),  # redacted, like every section, when the prompt is built
            # every line, added or not, is redacted when the prompt is built: no secret reaches a model
            Section("diff", fitted.text, kind="code"),
            Section("not_shown", "\n".join((*fitted.summarised, *fitted.omitted)) or "(nothing)"),
        ],
        call=CallMeta(
            ctx.installation_id,
            repo.full_name,
            "push_audit",
            "auditor",
            change.scope.category,
            ctx.job.id,
            ctx.delivery_id,
        ),
        role="auditor",
        complexity=change.scope.level,
        values={"repository": repo.full_name},
        max_output=4_000,
    )
    tokens = answer.input_tokens + answer.output_tokens
    report = assess_push(
        change,
        Opinion("auditor", answer.model, answer.value, tokens, answer.cost, answer.notes),
        floors=audit.Floors(
            rules.audit.min_severity, rules.audit.min_confidence, rules.audit.max_line_comments
        ),
    )
    await _report(repo, change.head, CHECK_NAME, report)
    PUSH_AUDITS.labels(f"audited_{report.verdict}").inc()


async def _check_models(
    ctx: FlowContext, repo: RepoClient, sha: str, diffs: list[FileDiff], rules: RepoPolicy
) -> None:
    configs = [
        d.path
        for d in diffs
        if d.status != "removed" and any(fnmatch.fnmatchcase(d.path, g) for g in rules.push.model_globs)
    ]
    if not configs:
        return
    catalogue = ctx.llm.catalogue if ctx.llm is not None else builtin_catalogue()
    today = dt.datetime.fromtimestamp(ctx.inbox.clock(), dt.UTC).date()
    known = {
        name: ModelStatus(info.status(today), info.shutdown, info.replacement)
        for name, info in catalogue.models.items()
    }
    annotations: list[dict[str, Any]] = []
    for path in configs[:20]:
        text = await repo.file_text(path, sha)
        for item in outdated(text or "", known):
            annotations.append(
                {
                    "path": path,
                    "start_line": item.line,
                    "end_line": item.line,
                    "annotation_level": "warning",
                    "title": f"{item.status} model",
                    "message": item.message(),
                }
            )
    lines = [f"- `{a['path']}:{a['start_line']}` {a['message']}" for a in annotations]
    await repo.report_check(
        sha,
        MODELS_CHECK,
        conclusion="neutral" if annotations else "success",
        title=f"{len(annotations)} outdated model name{'s' if len(annotations) != 1 else ''}"
        if annotations
        else "model names are current",
        summary="\n".join(lines) or "Every model named in " + ", ".join(configs) + " is current.",
        annotations=annotations,
    )


FLOW = Flow(
    name="push_audit",
    triggers=frozenset({("push", None)}),
    handler=handle,
    accepts=accepts,
    section="push",
    background=True,
)
